import pytest
from clickvision.params import ParameterError, validate_parameters

DEFAULTS = {"profile": "default", "seed": 0, "lr": 0.1, "hidden": [32], "interactive": False}


def test_valid_parameters_pass():
    vals = dict(DEFAULTS, lr=1, seed=3)  # an int where a float is declared is fine
    assert validate_parameters(vals, DEFAULTS)["seed"] == 3


@pytest.mark.parametrize("name,value,msg", [
    ("seed", 0.5, "'seed' must be int"),
    ("seed", True, "'seed' must be int"),
    ("lr", "fast", "'lr' must be float"),
    ("lr", float("nan"), "'lr' must be finite"),
    ("profile", "huge", "'profile' must be one of"),
    ("interactive", 1, "'interactive' must be bool"),
])
def test_bad_values_name_the_parameter(name, value, msg):
    with pytest.raises(ParameterError, match=msg):
        validate_parameters(dict(DEFAULTS, **{name: value}), DEFAULTS)


def test_unknown_injected_name_is_an_error():
    with pytest.raises(ParameterError, match="unknown parameter 'sed'.*accepts: .*seed"):
        validate_parameters(dict(DEFAULTS, sed=1), DEFAULTS, injected={"sed": 1})


def test_notebook_hook_records_defaults_and_injected():
    from IPython.testing.globalipapp import get_ipython, start_ipython

    ip = start_ipython() or get_ipython()
    ip.run_cell("import clickvision as cv; cv.params.watch()")
    ip.run_cell("profile = 'default'  # profile\nseed = 0  # seed")
    ip.run_cell("# Parameters\nseed = 2\nbogus = 1\n")
    res = ip.run_cell("P = cv.params.check(globals())")
    assert isinstance(res.error_in_exec, ParameterError)
    assert "bogus" in str(res.error_in_exec)
    ip.run_cell("cv.params.watch()")
    ip.run_cell("profile = 'default'\nseed = 0")
    ip.run_cell("# Parameters\nseed = 2\n")
    res = ip.run_cell("P = cv.params.check(globals())")
    assert res.error_in_exec is None
    assert ip.user_ns["P"] == {"profile": "default", "seed": 2}
