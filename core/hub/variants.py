"""A repo's files as the user thinks of them: one row per quant variant.

GGUF repos: files grouped by quant (split parts `-0000k-of-0000n` joined, sizes summed), the quant
parsed from the file name and, when asked, confirmed from the variant's own header read remotely.
Safetensors repos: the original dtype, total size and parameter count.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from quantdesk.core.hub.connection import api, check_online
from quantdesk.core.hub.errors import translate

SPLIT_RE = re.compile(r"^(?P<stem>.*)-(?P<k>\d{5})-of-(?P<n>\d{5})\.gguf$", re.IGNORECASE)
# A quant label between separators: Q4_K_M, IQ3_XXS, Q8_0, F16, BF16, UD-Q4_K_XL, MXFP4...
QUANT_RE = re.compile(
    r"(?<![A-Za-z0-9])((?:UD-)?(?:I?Q\d(?:_[A-Z0-9]{1,4})+|BF16|F16|FP16|F32|FP32|MXFP4(?:_MOE)?|TQ\d_\d))(?![A-Za-z0-9])",
    re.IGNORECASE)
_ALIASES = {"FP16": "F16", "FP32": "F32"}


def parse_quant(filename: str) -> str | None:
    """The quant label in a GGUF file name, upper-cased ("model.q4_k_m.gguf" -> "Q4_K_M")."""
    base = filename.rsplit("/", 1)[-1]
    m = SPLIT_RE.match(base)
    stem = m["stem"] if m else re.sub(r"\.gguf$", "", base, flags=re.IGNORECASE)
    found = QUANT_RE.findall(stem)
    if not found:
        return None
    label = found[-1].upper()  # the last label wins ("Llama-3-8B-Q4_K_M" vs a "Q1" in a name)
    return _ALIASES.get(label, label)


@dataclass
class RepoFile:
    name: str
    size: int | None
    sha256: str | None       # the hub's LFS sha256 (None for small git files)


@dataclass
class Variant:
    quant: str                       # from the file name ("Q4_K_M", "UD-Q4_K_XL") or the header
    files: list[RepoFile]            # in part order
    size_bytes: int
    bits_per_weight: float | None = None
    file_type: str | None = None     # the header's general.file_type, once read
    confirmed: bool | None = None    # the header agrees with the name (None: not read yet)
    header: dict | None = None       # RemoteGGUF.to_json() once read
    fit: dict | None = None          # planner verdict (Plan.to_json()) once computed
    fit_note: str | None = None      # why there is no fit ("planner not available", errors...)
    remote: object = field(default=None, repr=False, compare=False)   # RemoteGGUF (all parts merged)

    @property
    def first_file(self) -> str:
        return self.files[0].name

    def to_json(self) -> dict:
        return {
            "quant": self.quant, "files": [f.name for f in self.files], "size_bytes": self.size_bytes,
            "bits_per_weight": self.bits_per_weight, "file_type": self.file_type,
            "confirmed": self.confirmed, "fit": self.fit, "fit_note": self.fit_note,
            "header": self.header, "file_details": [asdict(f) for f in self.files],
        }


@dataclass
class RepoDetails:
    repo_id: str
    sha: str | None
    kind: str                        # "gguf" | "safetensors" | "other"
    license: str | None
    gated: bool
    parameters: int | None
    variants: list[Variant] = field(default_factory=list)
    mmproj: list[RepoFile] = field(default_factory=list)   # vision projectors (not models)
    safetensors_dtype: str | None = None
    safetensors_bytes: int | None = None
    files: list[RepoFile] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "repo_id": self.repo_id, "sha": self.sha, "kind": self.kind, "license": self.license,
            "gated": self.gated, "parameters": self.parameters,
            "variants": [v.to_json() for v in self.variants],
            "mmproj": [asdict(f) for f in self.mmproj],
            "safetensors_dtype": self.safetensors_dtype, "safetensors_bytes": self.safetensors_bytes,
        }


def group_variants(files: list[RepoFile], parameters: int | None = None) -> tuple[list[Variant], list[RepoFile]]:
    """GGUF files -> (variants sorted by size, mmproj files)."""
    groups: dict[str, list[tuple[int, RepoFile]]] = {}
    mmproj = []
    for f in files:
        if not f.name.lower().endswith(".gguf"):
            continue
        base = f.name.rsplit("/", 1)[-1]
        if "mmproj" in base.lower():
            mmproj.append(f)
            continue
        m = SPLIT_RE.match(f.name)
        key = m["stem"] if m else f.name
        groups.setdefault(key, []).append((int(m["k"]) if m else 1, f))
    variants = []
    for key, parts in groups.items():
        parts.sort(key=lambda p: p[0])
        members = [f for _, f in parts]
        size = sum(f.size or 0 for f in members)
        quant = parse_quant(members[0].name) or key.rsplit("/", 1)[-1].removesuffix(".gguf")
        bpw = 8 * size / parameters if parameters and size else None
        variants.append(Variant(quant, members, size, bpw))
    variants.sort(key=lambda v: (v.size_bytes, v.quant))
    return variants, mmproj


def _license(info) -> str | None:
    card = info.card_data
    if card is not None:
        value = getattr(card, "license", None) or (card.get("license") if hasattr(card, "get") else None)
        if value:
            return str(value)
    for tag in info.tags or ():
        if tag.startswith("license:"):
            return tag.split(":", 1)[1]
    return None


def repo_details(repo_id: str, revision: str | None = None) -> RepoDetails:
    """Model info with file sizes and LFS sha256 (`model_info(files_metadata=True)`), grouped."""
    check_online(f"read {repo_id} from the hub")
    try:
        info = api().model_info(repo_id, revision=revision, files_metadata=True, timeout=30.0)
    except Exception as exc:  # noqa: BLE001
        raise translate(exc, f"read {repo_id} from the hub") from None
    files = [RepoFile(s.rfilename, s.lfs.size if s.lfs else s.size, s.lfs.sha256 if s.lfs else None)
             for s in info.siblings or ()]
    gguf = info.gguf if isinstance(info.gguf, dict) else {}
    params = gguf.get("total") or (info.safetensors.total if info.safetensors else None)
    st_files = [f for f in files if f.name.endswith(".safetensors")]
    st_dtype = None
    if params is None and st_files:   # the hub has no count for this repo: read the headers
        params, st_dtype = safetensors_parameters(repo_id, [f.name for f in st_files],
                                                  info.sha or revision)
    variants, mmproj = group_variants(files, params)
    kind = "gguf" if variants else "safetensors" if st_files else "other"
    details = RepoDetails(repo_id, info.sha, kind, _license(info), bool(info.gated), params,
                          variants, mmproj, files=files)
    if st_files:
        details.safetensors_bytes = sum(f.size or 0 for f in st_files)
        if info.safetensors and info.safetensors.parameters:
            by_dtype = info.safetensors.parameters
            details.safetensors_dtype = max(by_dtype, key=by_dtype.get)
        else:
            details.safetensors_dtype = st_dtype
    return details


MAX_HEADER_FILES = 64   # shards whose headers we read for a count the hub does not give


def safetensors_parameters(repo_id: str, filenames: list[str], revision: str | None = None):
    """(parameter count, main dtype) from the safetensors headers themselves (a Range request
    for each file's first 100 kB, nothing written), for repos the hub gives no count for;
    (None, None) when they cannot be read."""
    if not filenames or len(filenames) > MAX_HEADER_FILES:
        return None, None
    total, by_dtype = 0, {}
    try:
        hub = api()
        for name in filenames:
            meta = hub.parse_safetensors_file_metadata(repo_id, name, revision=revision, timeout=30.0)
            for dtype, count in meta.parameter_count.items():
                by_dtype[dtype] = by_dtype.get(dtype, 0) + count
                total += count
    except Exception:  # noqa: BLE001 - a missing count must not hide the repo's page
        return None, None
    return (total or None), (max(by_dtype, key=by_dtype.get) if by_dtype else None)


def learn_from_header(details: RepoDetails, variant: Variant) -> bool:
    """A GGUF repo the hub gives no parameter count for: take it from the first header read
    (every variant of a repo is the same model), and the bits/weight that follow. True when
    `details` changed."""
    remote = variant.remote
    if details.parameters or remote is None or not remote.parameters:
        return False
    details.parameters = remote.parameters
    for v in details.variants:
        if v.bits_per_weight is None and v.size_bytes:
            v.bits_per_weight = 8 * v.size_bytes / details.parameters
    return True


def read_variant_header(repo_id: str, variant: Variant, revision: str = "main", **kw) -> Variant:
    """Read each part's header remotely (a prefix of each file) and fill in the variant.

    The quant label from the file name is checked against the header's file type; bits/weight
    come from the tensor table (all parts together).
    """
    from quantdesk.core.hub.remote_gguf import read_remote_header
    heads = [read_remote_header(repo_id, f.name, revision, **kw) for f in variant.files]
    merged = heads[0]
    for extra in heads[1:]:
        merged.tensors = merged.tensors + extra.tensors
        merged.bytes_fetched += extra.bytes_fetched
    variant.remote = merged
    variant.header = merged.to_json()
    variant.header["parts"] = len(heads)
    variant.file_type = merged.file_type
    label, ftype = variant.quant.upper().removeprefix("UD-"), merged.file_type
    # "Q4_K_XL" (a maker's own K-quant mix) agrees with a Q4_K_M header; "Q4_K_M" vs "Q4_0" does not
    family = ftype[:-2] if re.fullmatch(r"I?Q\d_K_[SML]", ftype) else ftype
    variant.confirmed = label == ftype or label.startswith(family + "_") or label == family
    if parse_quant(variant.first_file) is None:   # no label in the name: the header names it
        variant.quant = merged.file_type
    variant.bits_per_weight = merged.bits_per_weight
    return variant
