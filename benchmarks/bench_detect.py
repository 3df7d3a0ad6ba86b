"""Language detection (`detect(message.text)`): what it costs to load and to run.

Each measurement runs in a fresh Python process (lingua loads a language's model the first time
it is needed, and a process keeps it), the configurations interleaved, `ROUNDS` rounds:

1. importing lingua, against a process that imports nothing (the baseline);
2. the first detection (building the detector, loading the models) and the memory it adds
   (peak resident set), with the deployment's three languages (en, es, ja) against all of
   lingua's languages: why `detect` is restricted to the flow's languages (goal: at most a
   quarter of the memory and time of all languages);
3. one detection after that (median of 200 short customer messages), three languages against all.

Reported: min and median over the rounds, and the ratios.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 3
THREE = ("en", "es", "ja")

_PROBE = r"""
import json, resource, sys, time
mode = sys.argv[1]
t0 = time.perf_counter()
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "baseline":
    print(json.dumps({"import": time.perf_counter() - t0}))
    raise SystemExit
import lingua
imported = time.perf_counter() - t0
from flowlang.runtime.detect import detect_language
from lingua import Language
among = tuple(json.loads(sys.argv[2])) or tuple(
    sorted(language.iso_code_639_1.name.lower() for language in Language.all())
)
texts = [
    "Hola, he perdido mi tarjeta", "I lost my card yesterday", "カードをなくしました",
    "Necesito un préstamo", "Can I change my address?", "口座を開きたいです",
] * 34
detect_language("", among, None, 0.7)  # no text: nothing built, nothing loaded
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t1 = time.perf_counter()
detect_language(texts[0], among, None, 0.7)
first = time.perf_counter() - t1
rss2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
each = []
for text in texts[1:]:
    t = time.perf_counter()
    detect_language(text, among, None, 0.7)
    each.append(time.perf_counter() - t)
each.sort()
print(json.dumps({
    "import": imported, "first": first, "memory_mb": (rss2 - rss1) / 1024,
    "each": each[len(each) // 2],
}))
"""


def _probe(mode: str, among: tuple[str, ...] = ()) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode, json.dumps(list(among))],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def _line(label: str, values: list[float], scale: float, unit: str) -> str:
    return (
        f"  {label:<44} min {min(values) * scale:9.1f} {unit}"
        f"   median {statistics.median(values) * scale:9.1f} {unit}"
    )


def main() -> None:
    baseline: list[dict[str, float]] = []
    three: list[dict[str, float]] = []
    every: list[dict[str, float]] = []
    for _ in range(ROUNDS):
        baseline.append(_probe("baseline"))
        three.append(_probe("detect", THREE))
        every.append(_probe("detect"))

    def of(runs: list[dict[str, float]], key: str) -> list[float]:
        return [r[key] for r in runs]

    print(f"language detection, {ROUNDS} interleaved rounds, a fresh process each")
    print(_line("import: nothing (baseline)", of(baseline, "import"), 1e3, "ms"))
    print(_line("import: lingua", of(three, "import"), 1e3, "ms"))
    print(_line("first detection, en/es/ja", of(three, "first"), 1e3, "ms"))
    print(_line("first detection, all languages (baseline)", of(every, "first"), 1e3, "ms"))
    print(_line("memory added by it, en/es/ja", of(three, "memory_mb"), 1, "MB"))
    print(_line("memory added by it, all languages (baseline)", of(every, "memory_mb"), 1, "MB"))
    print(_line("one detection after, en/es/ja", of(three, "each"), 1e6, "us"))
    print(_line("one detection after, all languages (baseline)", of(every, "each"), 1e6, "us"))
    first = min(of(three, "first")) / min(of(every, "first"))
    memory = min(of(three, "memory_mb")) / max(min(of(every, "memory_mb")), 1e-9)
    each = min(of(three, "each")) / min(of(every, "each"))
    print(
        f"  three languages / all: first detection {first:.2f}x, memory {memory:.2f}x, "
        f"each detection {each:.2f}x (goal for the first two: <= 0.25x)"
    )


if __name__ == "__main__":
    main()
