"""The fuzz tables themselves: every bad-value expression of every slot evaluates (a pool
entry that raises while being built would hide its case), and every case id is unique."""

from __future__ import annotations

import pytest

from . import _values
from ._api_distributed import APIS as DISTRIBUTED
from ._api_io import APIS as IO
from ._api_jit import APIS as JIT
from ._api_nn import APIS as NN
from ._api_optim import APIS as OPTIM
from ._api_picograd import APIS as PICOGRAD
from ._api_random import APIS as RANDOM
from ._api_transforms import APIS as TRANSFORMS
from ._api_tree import APIS as TREE
from ._contract import evaluate
from ._xfail import XFAIL

TABLES = {"distributed": DISTRIBUTED, "io": IO, "jit": JIT, "nn": NN, "optim": OPTIM,
          "picograd": PICOGRAD, "random": RANDOM, "transforms": TRANSFORMS, "tree": TREE}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_pool_entry_evaluates(table: str, tmp_path: object) -> None:
    _values.set_example_dir(str(tmp_path))
    entries = sorted({src for api in TABLES[table] for slot in api.slots.values()
                      for src in slot[2]})
    broken = []
    for src in entries:
        try:
            evaluate(src)
        except Exception as e:
            broken.append(f"{src}: {type(e).__name__}: {e}")
    assert not broken, "\n".join(broken)


def test_case_ids_unique_and_xfails_exist() -> None:
    ids = [f"{api.name}[{slot}]" for apis in TABLES.values() for api in apis
           for slot in api.slots]
    assert len(ids) == len(set(ids))
    assert set(XFAIL) <= set(ids), sorted(set(XFAIL) - set(ids))
