"""Model bundles: present, complete, checksums right, and the device they will run on."""

from __future__ import annotations

from pathlib import Path

from edge.config import Config
from edge.doctor.finding import Finding
from edge.errors import SalesbotError


def check(config: Config) -> list[Finding]:
    findings = [_bundle("intent", config.nlu.intent_bundle, config.nlu.engine)]
    asr = getattr(config, "asr", None)  # the speech sections exist once the speech models are installed
    if asr is not None and getattr(asr, "model", None) is not None:
        findings.append(_model_dir("asr", Path(asr.model)))
    findings.append(_device(config))
    return findings


def _bundle(kind: str, root: Path, engine: str) -> Finding:
    from edge.bundle import Bundle

    name = f"bundle {kind}"
    fix = (f"reinstall the package (pip install --force-reinstall edge-salesbot), rebuild it (make export-default), "
           f"or point [nlu] intent_bundle at a good bundle; `salesbot export {kind}` writes one")
    try:
        bundle = Bundle.open(root, kind=kind, verify=True)
    except SalesbotError as exc:
        return Finding(name, "fail", str(exc), fix)
    models = bundle.manifest.get("models", {})
    if models and engine not in models:
        return Finding(name, "fail", f"{root}: no model for engine {engine!r} (has {sorted(models)})",
                       f"set [nlu] engine to one of {sorted(models)}, or re-export the bundle")
    return Finding(name, "ok", f"{root}: {len(bundle.manifest['files'])} files, checksums match")


def _model_dir(kind: str, root: Path) -> Finding:
    from edge.bundle import MANIFEST, Bundle

    name = f"model {kind}"
    if not root.is_dir():
        return Finding(name, "fail", f"{root} does not exist",
                       f"install a model (salesbot models add) or fix [{kind}] model")
    manifest = root / MANIFEST
    if manifest.is_file():
        import json

        try:
            declared = json.loads(manifest.read_text(encoding="utf-8")).get("kind", kind)
            Bundle.open(root, kind=declared, verify=True)
        except (SalesbotError, ValueError) as exc:
            return Finding(name, "fail", str(exc), "reinstall the model directory")
        return Finding(name, "ok", f"{root}: checksums match")
    return Finding(name, "ok", f"{root} (third-party model directory; no manifest to verify)")


def _device(config: Config) -> Finding:
    from edge import accel

    device = config.nlu.device
    if device == "cpu":
        return Finding("model device", "ok", "models run on the CPU ([nlu] device = \"cpu\")")
    if config.nlu.engine == "openvino":
        used = accel.openvino_device(device, model="intent").lower()
    else:
        used = accel.ort_providers(device, model="intent")[1]
    if used == "cpu" and device != "auto":
        return Finding("model device", "warn", f"[nlu] device = {device!r} but no such device here: models will "
                       "run on the CPU", f"install the GPU runtime for {config.nlu.engine}, or set device = \"cpu\"")
    return Finding("model device", "ok", f"[nlu] device = {device!r}: the intent model runs on {used}")
