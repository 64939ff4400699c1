"""Point the conformance kit at any implementation, array-api-tests style.

    YOLO_REF_IMPL=mypkg.ops pytest --pyargs parity_tests.conformance

Every reference contract whose function name ``mypkg.ops`` defines (``nms``, ``box_iou``,
``yolov5_decode``, ...) becomes one test that fails with the printed report when the kit finds a
bug; contracts the module lacks are skipped with their name. Without ``YOLO_REF_IMPL`` the whole
module is skipped, so the normal ``pytest parity_tests`` run collects nothing failing here.
``YOLO_REF_EXAMPLES`` sets the examples per regime (default 100).
"""
from __future__ import annotations

import importlib
import os

import pytest

IMPL = os.environ.get("YOLO_REF_IMPL")
if not IMPL:
    pytest.skip("YOLO_REF_IMPL is not set (YOLO_REF_IMPL=mypkg.ops pytest --pyargs "
                "parity_tests.conformance)", allow_module_level=True)

from parity_tests import conformance  # noqa: E402

EXAMPLES = int(os.environ.get("YOLO_REF_EXAMPLES", "100"))


def _module():
    try:
        return importlib.import_module(IMPL)
    except ImportError as exc:
        pytest.fail(f"YOLO_REF_IMPL={IMPL!r} cannot be imported: {exc}")


@pytest.mark.parametrize("target", conformance.targets())
def test_contract(target: str) -> None:
    func = target.split(".", 1)[1]
    impl = getattr(_module(), func, None)
    if impl is None:
        pytest.skip(f"{IMPL} has no {func} (contract {target})")
    report = conformance.check(impl, target, examples=EXAMPLES, name=f"{IMPL}.{func}")
    if not report.ok:
        pytest.fail("\n" + str(report), pytrace=False)
