"""The SDK's target side without its tap side (`singer/sdk_import.py`).

Each case runs in a fresh interpreter: what matters is what the first import of the target
imports, and this test process has imported the whole SDK long since.
"""

from __future__ import annotations

import json
import subprocess
import sys

TAP_SIDE = ("singer_sdk.streams", "singer_sdk.tap_base", "requests", "jsonpath_ng")


def _python(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_target_imports_no_tap_side() -> None:
    seen = _python(
        "import json, sys\n"
        "import target_kinesis.singer.target\n"
        "from target_kinesis.singer.sdk_import import tap_side_imported\n"
        f"print(json.dumps({{'imported': [m for m in {TAP_SIDE!r} if m in sys.modules], "
        "'tap_side': tap_side_imported()}))"
    )
    assert seen == {"imported": [], "tap_side": False}


def test_the_package_is_the_sdks_own_once_asked_for_a_name_of_its_init() -> None:
    seen = _python(
        "import json, sys, warnings\n"
        "from target_kinesis.singer.target import TargetKinesis\n"
        "import singer_sdk, singer_sdk.target_base\n"
        "from singer_sdk import metrics\n"
        "after_submodule = 'singer_sdk.streams' in sys.modules\n"
        "from singer_sdk import Stream, Target\n"
        "try:\n"
        "    singer_sdk.Nope\n"
        "    missing = 'found'\n"
        "except AttributeError as exc:\n"
        "    missing = str(exc)\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    singer_sdk.SQLTarget\n"
        "print(json.dumps({'after_submodule': after_submodule, 'metrics': metrics.__name__,\n"
        "    'same_target': Target is singer_sdk.target_base.Target and issubclass(TargetKinesis, Target),\n"
        "    'stream': Stream.__module__, 'missing': missing, 'all': 'Target' in singer_sdk.__all__,\n"
        "    'sql_warning': [type(w.message).__name__ for w in caught]}))"
    )
    assert seen == {
        "after_submodule": False,
        "metrics": "singer_sdk.metrics",
        "same_target": True,
        "stream": "singer_sdk.streams.core",
        "missing": "module 'singer_sdk' has no attribute 'Nope'",
        "all": True,
        "sql_warning": ["SingerSDKDeprecationWarning"],
    }


def test_a_target_side_that_cannot_be_imported_alone_falls_back_to_the_plain_import() -> None:
    """As a future SDK whose target side needs the package's __init__ would."""
    seen = _python(
        "import json\n"
        "from target_kinesis.singer import sdk_import\n"
        "import sys\n"
        "for name in [n for n in sys.modules if n.startswith('singer_sdk')]:\n"
        "    del sys.modules[name]\n"
        "sdk_import.TARGET_SIDE = (*sdk_import.TARGET_SIDE, 'singer_sdk.no_such_module')\n"
        "alone = sdk_import.without_tap_side()\n"
        "from singer_sdk import Target\n"
        "print(json.dumps({'alone': alone, 'tap_side': sdk_import.tap_side_imported(), 'target': Target.__name__}))"
    )
    assert seen == {"alone": False, "tap_side": True, "target": "Target"}


def test_nothing_is_done_when_the_sdk_is_already_imported() -> None:
    seen = _python(
        "import json, singer_sdk\n"
        "from target_kinesis.singer import sdk_import\n"
        "print(json.dumps({'alone': sdk_import.without_tap_side(), 'tap_side': sdk_import.tap_side_imported()}))"
    )
    assert seen == {"alone": False, "tap_side": True}
