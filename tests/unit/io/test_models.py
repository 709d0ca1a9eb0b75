"""Tests of the model adapters (audit.io.models); every fixture is built in tmp_path."""

from __future__ import annotations

import hashlib
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from audit.errors import InputError, ModelError, UntrustedModelError
from audit.io.models import (
    CallableAdapter,
    ModelAdapter,
    PickleAdapter,
    PredictionsAdapter,
    SkopsAdapter,
    load_model,
    validate_probabilities,
)


@pytest.fixture
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(80, 3)) * [1.0, 10.0, 100.0], columns=["age", "bmi", "sbp"])
    y = (X["age"] + X["bmi"] / 10 + rng.normal(scale=0.5, size=80) > 0).astype(int).to_numpy()
    return X, y


@pytest.fixture
def pipeline(data):
    X, y = data
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)


def _with_extra_columns(X: pd.DataFrame) -> pd.DataFrame:
    # The audit's frame also holds the label and sensitive attributes, in another order.
    return X[["sbp", "age", "bmi"]].assign(label=0, sex="F")


# --------------------------------------------------------------------------- skops


def test_skops_pipeline_loads_without_trusted_types_and_matches_predict_proba(
    tmp_path, data, pipeline
):
    X, _ = data
    path = tmp_path / "model.skops"
    sio.dump(pipeline, path)

    adapter = load_model(str(path))

    assert isinstance(adapter, SkopsAdapter)
    assert isinstance(adapter, ModelAdapter)
    assert adapter.kind == "sklearn"
    assert adapter.source == str(path)
    assert adapter.output_names is None
    assert adapter.fingerprint() == hashlib.sha256(path.read_bytes()).hexdigest()
    scores = adapter.predict(_with_extra_columns(X))
    assert scores.dtype == np.float64
    assert scores.shape == (len(X), 1)
    np.testing.assert_allclose(scores[:, 0], pipeline.predict_proba(X)[:, 1], rtol=0, atol=1e-12)


def test_skops_random_forest_is_refused_until_tree_type_is_trusted(tmp_path, data):
    X, y = data
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    path = tmp_path / "forest.skops"
    sio.dump(forest, path)

    with pytest.raises(UntrustedModelError, match=r"sklearn\.tree\._tree\.Tree") as info:
        load_model(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert "add them to model.trusted_types in audit.toml" in message
    assert "only if you trust the file's author" in message

    adapter = load_model(str(path), trusted_types=["sklearn.tree._tree.Tree"])
    np.testing.assert_allclose(
        adapter.predict(X)[:, 0], forest.predict_proba(X)[:, 1], rtol=0, atol=1e-12
    )


def test_skops_trusting_an_unrelated_type_is_not_enough(tmp_path, data):
    X, y = data
    path = tmp_path / "forest.skops"
    sio.dump(RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y), path)
    with pytest.raises(UntrustedModelError, match="Tree"):
        SkopsAdapter(path, trusted_types=("numpy.float64",))


def test_multi_output_classifier_gives_one_column_per_output(tmp_path, data):
    X, y = data
    Y = np.column_stack([y, (X["sbp"] > 0).astype(int), 1 - y])
    model = MultiOutputClassifier(LogisticRegression()).fit(X, Y)
    path = tmp_path / "multi.skops"
    sio.dump(model, path)

    scores = load_model(str(path)).predict(X)

    assert scores.shape == (len(X), 3)
    expected = np.column_stack([p[:, 1] for p in model.predict_proba(X)])
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12)


def test_missing_feature_column_is_named(tmp_path, data, pipeline):
    X, _ = data
    path = tmp_path / "model.skops"
    sio.dump(pipeline, path)
    adapter = load_model(str(path))
    with pytest.raises(InputError, match=r"missing from the data: 'bmi' \(data columns: age, sbp"):
        adapter.predict(X.drop(columns="bmi"))


def test_model_fitted_without_names_checks_the_number_of_columns(tmp_path, data):
    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X.to_numpy(), y)
    path = tmp_path / "nonames.skops"
    sio.dump(model, path)
    adapter = load_model(str(path))
    np.testing.assert_allclose(adapter.predict(X)[:, 0], model.predict_proba(X.to_numpy())[:, 1])
    with pytest.raises(InputError, match="expects 3 features by position, but .* has 4 columns"):
        adapter.predict(X.assign(label=1))


def test_decision_function_only_model_asks_for_probabilities(tmp_path, data):
    X, y = data
    path = tmp_path / "svc.skops"
    sio.dump(LinearSVC().fit(X, y), path)
    with pytest.raises(ModelError, match="no predict_proba.*CalibratedClassifierCV"):
        load_model(str(path))


def test_multiclass_model_is_refused_with_explanation(tmp_path, data):
    X, y = data
    three_classes = y + (X["sbp"] > 50).astype(int).to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, three_classes)
    path = tmp_path / "multiclass.skops"
    sio.dump(model, path)
    with pytest.raises(ModelError, match="probabilities for 3 classes.*binary"):
        load_model(str(path)).predict(X)


def test_unreadable_skops_file_is_a_model_error(tmp_path):
    path = tmp_path / "broken.skops"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ModelError, match="Cannot read skops file .*broken.skops"):
        load_model(str(path))


# --------------------------------------------------------------------------- pickle / joblib


@pytest.mark.parametrize("suffix", [".pkl", ".pickle", ".joblib"])
def test_pickle_needs_trust_model(tmp_path, data, pipeline, suffix):
    X, _ = data
    path = tmp_path / f"model{suffix}"
    if suffix == ".joblib":
        joblib.dump(pipeline, path)
    else:
        path.write_bytes(pickle.dumps(pipeline))

    with pytest.raises(UntrustedModelError, match=r"Refusing to load .*--trust-model") as info:
        load_model(str(path))
    assert "skops.io.dump" in str(info.value)

    adapter = load_model(str(path), trust_model=True)
    assert isinstance(adapter, PickleAdapter)
    assert adapter.kind == "sklearn"
    assert adapter.fingerprint() == hashlib.sha256(path.read_bytes()).hexdigest()
    np.testing.assert_allclose(
        adapter.predict(X)[:, 0], pipeline.predict_proba(X)[:, 1], rtol=0, atol=1e-12
    )


def test_pickle_refusal_happens_before_the_file_is_read(tmp_path, monkeypatch):
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"garbage")
    monkeypatch.setattr(joblib, "load", lambda *a, **k: pytest.fail("joblib.load was called"))
    with pytest.raises(UntrustedModelError):
        PickleAdapter(path, trust_model=False)


# --------------------------------------------------------------------------- callable


@pytest.fixture
def helper_module(tmp_path, monkeypatch):
    name = "tests_helpers_module"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            def fn(features):
                return 1.0 / (1.0 + np.exp(-features["age"].to_numpy()))

            def two(features):
                n = len(features)
                return np.column_stack([np.full(n, 0.25), np.full(n, 0.75)])

            def short(features):
                return [0.5] * (len(features) - 1)

            def boom(features):
                raise RuntimeError("kaput")

            def vandal(features):
                features["age"] = 0.0
                return np.zeros(len(features))

            not_callable = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    yield name
    sys.modules.pop(name, None)


def test_callable_spec_works(helper_module, data):
    X, _ = data
    adapter = load_model(f"{helper_module}:fn")
    assert isinstance(adapter, CallableAdapter)
    assert isinstance(adapter, ModelAdapter)
    assert adapter.kind == "callable"
    assert adapter.source == f"{helper_module}:fn"
    scores = adapter.predict(X)
    assert scores.shape == (len(X), 1) and scores.dtype == np.float64
    np.testing.assert_allclose(scores[:, 0], 1.0 / (1.0 + np.exp(-X["age"].to_numpy())))
    assert adapter.predict(X.head(4)).shape == (4, 1)
    assert load_model(f"{helper_module}:two").predict(X).shape == (len(X), 2)


def test_callable_fingerprint_is_stable_and_tells_functions_apart(helper_module):
    fn = load_model(f"{helper_module}:fn")
    assert fn.fingerprint() == load_model(f"{helper_module}:fn").fingerprint()
    assert len(fn.fingerprint()) == 64
    assert fn.fingerprint() != load_model(f"{helper_module}:two").fingerprint()


def test_callable_cannot_change_the_callers_data(helper_module, data):
    X, _ = data
    before = X.copy()
    load_model(f"{helper_module}:vandal").predict(X)
    pd.testing.assert_frame_equal(X, before)


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("tests_helpers_module:", r"Malformed model function 'tests_helpers_module:'"),
        (":fn", r"Malformed model function ':fn'.*'package\.module:function'"),
        ("a:b:c", r"Malformed model function 'a:b:c'"),
        ("bad-name:fn", r"Malformed model function 'bad-name:fn'"),
        (
            "no_such_module_xyz:fn",
            r"Cannot import module 'no_such_module_xyz' for model function "
            r"'no_such_module_xyz:fn'.*'package\.module:function'",
        ),
        (
            "tests_helpers_module:missing",
            r"has no attribute 'missing' \(model function 'tests_helpers_module:missing'\)"
            r".*'package\.module:function'",
        ),
        ("tests_helpers_module:not_callable", r"'tests_helpers_module:not_callable' is a int"),
    ],
)
def test_bad_callable_specs_are_explained(helper_module, spec, pattern):
    with pytest.raises(ModelError, match=pattern):
        load_model(spec)


def test_callable_with_wrong_length_names_spec_and_both_lengths(helper_module, data):
    X, _ = data
    adapter = load_model(f"{helper_module}:short")
    pattern = r"'tests_helpers_module:short'.* 79 rows .* 80 input rows"
    with pytest.raises(ModelError, match=pattern):
        adapter.predict(X)


def test_callable_that_raises_is_a_model_error(helper_module, data):
    X, _ = data
    with pytest.raises(ModelError, match=r"'tests_helpers_module:boom' raised RuntimeError: kaput"):
        load_model(f"{helper_module}:boom").predict(X)


# --------------------------------------------------------------------------- predictions


def test_predictions_adapter_reads_score_columns():
    frame = pd.DataFrame({"p_b": [0.1, 0.9], "p_a": [0.2, 0.3], "sex": ["F", "M"]})
    adapter = load_model(None, score_columns=["p_b", "p_a"])
    assert isinstance(adapter, PredictionsAdapter)
    assert isinstance(adapter, ModelAdapter)
    assert adapter.kind == "predictions"
    assert adapter.output_names == ("p_b", "p_a")
    assert adapter.fingerprint() == "predictions:p_a,p_b"
    scores = adapter.predict(frame)
    assert scores.dtype == np.float64
    np.testing.assert_array_equal(scores, [[0.1, 0.2], [0.9, 0.3]])
    assert load_model("", score_columns=("p_a",)).predict(frame).shape == (2, 1)


def test_predictions_adapter_rejects_non_numeric_and_missing_columns():
    frame = pd.DataFrame({"score": ["0.1", "high"], "ok": [0.1, 0.2]})
    with pytest.raises(InputError, match="Score column 'score' has dtype .* must be numeric"):
        PredictionsAdapter(["ok", "score"]).predict(frame)
    with pytest.raises(InputError, match=r"Score column\(s\) 'p' not found .*columns: score, ok"):
        PredictionsAdapter(["p"]).predict(frame)


# --------------------------------------------------------------------------- load_model


def test_load_model_missing_file(tmp_path):
    path = tmp_path / "absent.skops"
    with pytest.raises(InputError, match=f"Model file not found: {path}"):
        load_model(str(path))
    with pytest.raises(InputError, match="Model file not found"):
        load_model(str(tmp_path / "absent.joblib"), trust_model=True)


@pytest.mark.parametrize("name", ["net.onnx", "net.pt", "net.ts"])
def test_load_model_torch_and_onnx_are_not_yet_available(tmp_path, name):
    with pytest.raises(ModelError, match="torch and ONNX models .* imaging support.*not yet"):
        load_model(str(tmp_path / name))


def test_load_model_unsupported_forms_are_listed(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"x")
    pattern = r"Unsupported model .*model\.h5.*\.skops.*package\.module"
    with pytest.raises(ModelError, match=pattern):
        load_model(str(path))
    with pytest.raises(ModelError, match=r"Unsupported model 'mypkg\.predict' \(no such file\)"):
        load_model("mypkg.predict")
    with pytest.raises(ModelError, match="No model given"):
        load_model(None)


def test_load_model_refuses_model_and_score_columns_together(helper_module):
    with pytest.raises(ModelError, match="give one"):
        load_model(f"{helper_module}:fn", score_columns=["p"])


def test_existing_file_with_colon_is_not_taken_for_a_function(tmp_path, monkeypatch):
    (tmp_path / "a:b").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match="Unsupported model 'a:b'"):
        load_model("a:b")


# --------------------------------------------------------------------------- validation


def test_validate_probabilities_accepts_bounds():
    validate_probabilities(np.array([[0.0, 1.0], [0.5, 0.25]]), "model.skops")
    validate_probabilities(np.empty((0, 1)), "model.skops")


def test_validate_probabilities_reports_count_and_range():
    scores = np.array([[-0.5], [0.2], [1.5], [0.7]])
    with pytest.raises(
        InputError,
        match=r"Scores from model\.skops must be probabilities in \[0, 1\], but 2 of 4 values "
        r"are out of range \(min -0\.5, max 1\.5\)",
    ):
        validate_probabilities(scores, "model.skops")


def test_validate_probabilities_counts_nan():
    with pytest.raises(InputError, match=r"1 of 3 values .*\(min 0\.1, max 0\.3, 1 NaN\)"):
        validate_probabilities([0.1, np.nan, 0.3], "scores column p")


# --------------------------------------------------------------------------- import cost


def test_import_does_not_pull_in_heavy_libraries():
    code = "import audit.io.models, sys; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    code = (
        "import audit.io.models, sys; "
        "print(sorted({'skops', 'joblib', 'pandas'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
