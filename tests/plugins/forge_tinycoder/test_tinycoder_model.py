"""The shipped model: the default base model, loads offline, generates, fits in 25 MB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from forge_core.config import ForgeSettings
from forge_core.pipeline import Forge
from forge_core.plugins import PluginRegistry
from forge_tinycoder.plugin import MODEL_DIR, NAME

#: The size budget of the model folder kept in git.
MAX_FOLDER_BYTES = 25 * 1024 * 1024


def test_registered_as_the_default_base_model() -> None:
    models = {spec.name: spec for _, spec in PluginRegistry().base_models()}
    assert models[NAME].default is True
    assert Path(models[NAME].path) == MODEL_DIR


def test_resolves_with_no_configuration(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in __import__("os").environ if k.startswith("FORGE_")]:
        monkeypatch.delenv(key)
    settings = ForgeSettings()
    assert settings.train.base_model is None
    forge = Forge(settings, tmp_path / "run", registry=PluginRegistry())
    assert Path(forge.resolve_base_model()) == MODEL_DIR


def test_plugin_module_is_light() -> None:
    code = (
        "import sys, forge_tinycoder.plugin; "
        "heavy = {'torch', 'transformers', 'tokenizers', 'numpy'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_folder_fits_the_budget() -> None:
    files = [p for p in MODEL_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= MAX_FOLDER_BYTES
    names = {p.name for p in files}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert not names & {"pytorch_model.bin", "model.bin"}


def test_config_is_llama_with_a_long_context() -> None:
    config = json.loads((MODEL_DIR / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["max_position_embeddings"] >= 1024


def test_loads_offline_and_generates(monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(MODEL_DIR))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(MODEL_DIR)).eval()
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Write a function that adds two numbers."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        output = model.generate(
            **prompt,
            max_new_tokens=8,
            min_new_tokens=8,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    assert output.shape[1] == prompt["input_ids"].shape[1] + 8
    assert isinstance(tokenizer.decode(output[0]), str)
