"""PyInstaller runtime hook (chronary.spec): the bundled IANA zone data, tzdata.zip, goes on sys.path.

The spec ships the `tzdata` package as one zip instead of ~600 files, because a one-file binary
unpacks every data file on every start; zoneinfo reads it through importlib.resources, which
reads zips. It is only used where the machine has no zone files of its own (zoneinfo.TZPATH).
"""

import os
import sys

sys.path.append(os.path.join(sys._MEIPASS, "tzdata.zip"))  # type: ignore[attr-defined]
