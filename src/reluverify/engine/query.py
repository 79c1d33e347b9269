"""A question for the engine: a network, an input set, an unsafe output condition; and the one
witness check every candidate point goes through."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..check import check_counterexample, snap_float32
from ..errors import InputError
from ..model import Network
from ..sets.base import InputSet
from ..spec import Property, Region


@dataclass
class Query:
    """Is some input of the set mapped into the unsafe condition?

    ``prop``: the unsafe condition, a disjunction of regions (each an input box and linear rows
    ``a_x x + a_y y <= b`` that must all hold; VNN-LIB's form). ``inputs``: an input set the point
    must lie in as well (an L1 or L0 ball, a mask ...), or None when the regions' boxes say it all.
    ``strict``: a witness must meet its rows strictly (a class *change*: a tie is not one).
    ``reference(x) -> y``: the source model (onnxruntime, Keras ...) that must confirm a witness.
    ``extra(x) -> str | None``: anything else a witness must satisfy (checked, never encoded).
    ``proof_slack``: a region counts as unreachable only when its rows provably stay above
    ``b + proof_slack`` (robustness: no wrong class may come within ``VERIFY_SLACK`` of the true
    one; a point in between is neither a witness nor a proof). ``reference_slack``: how far the
    source model may miss a strict witness's rows (their margin: it must show the change, not the
    float64 margin).
    """

    network: Network
    prop: Property
    inputs: InputSet | None = None
    strict: bool = False
    reference: object = None
    extra: object = None
    proof_slack: float = 0.0
    reference_slack: float = 0.0

    def __post_init__(self):
        if not isinstance(self.prop, Property):
            raise InputError(f"prop must be a reluverify.spec.Property (e.g. from read_vnnlib), got "
                             f"{type(self.prop).__name__}")
        self.prop.check_network(self.network)
        if self.inputs is not None and self.inputs.hull().size != self.network.n_inputs:
            raise InputError(f"the input set has {self.inputs.hull().size} values, the network takes "
                             f"{self.network.n_inputs}")

    @property
    def proof_regions(self) -> tuple:
        """The regions as proofs see them: ``b`` raised by ``proof_slack``."""
        if not self.proof_slack:
            return self.prop.regions
        if getattr(self, "_proof_regions", None) is None:
            self._proof_regions = tuple(Region(r.lower, r.upper, r.a_x, r.a_y, r.b + self.proof_slack)
                                        for r in self.prop.regions)
        return self._proof_regions

    def region_index(self, region: Region) -> int:
        """The index of ``region`` (one of ``prop.regions`` or of :attr:`proof_regions`)."""
        for regions in (self.prop.regions, self.proof_regions):
            for i, r in enumerate(regions):
                if r is region:
                    return i
        raise InputError("the region is not one of this query's")

    @property
    def boxes_only(self) -> bool:
        """Whether every region's input set is its box (input splitting and ReLU branching apply)."""
        return self.inputs is None or self.inputs.is_box

    def bound_domain(self, region: Region):
        """The domain the bound strategies take for ``region``: its box, or the input set's bound
        domain (e.g. an L1 ball) within that box."""
        from ..sets.box import Box

        box = Box(region.lower, region.upper)
        restrict = None if self.boxes_only else getattr(self.inputs, "restrict", None)
        return box if restrict is None else restrict(box)


class Witnesses:
    """Turns candidate points into checked witnesses (or counts the rejects): the point is snapped
    to float32 inside the region's box (what float32 tools such as onnxruntime read back; kept in
    float64 where that would leave the input set), then :func:`reluverify.check.check_counterexample`."""

    def __init__(self, query: Query):
        self.query = query
        self.rejected = 0
        self.last_reason = ""
        #: a point in a proof region (the rows raised by the query's proof slack) that is no witness:
        #: no proof is possible any more; stages that search for one stop (``(region index, x)``)
        self.near_miss = None

    def __call__(self, x: np.ndarray, region: Region):
        q = self.query
        idx = q.region_index(region)
        proof_region = region if (q.proof_slack and region is q.proof_regions[idx]) else None
        region = q.prop.regions[idx]
        x = np.clip(np.asarray(x, dtype=np.float64), region.lower, region.upper)
        if q.inputs is not None:
            x = q.inputs.fit(x)
        point = snap_float32(x, region.lower, region.upper)
        if q.inputs is not None and not q.inputs.contains(point):
            point = x
        chk = check_counterexample(q.network, q.prop, point, q.reference, strict=q.strict, inputs=q.inputs,
                                   extra=q.extra, regions=[idx], reference_slack=q.reference_slack)
        if chk.ok:
            return chk
        self.rejected += 1
        self.last_reason = chk.reason
        if proof_region is not None and self.near_miss is None:
            y = q.network.forward(point)
            if proof_region.violation(point, y) <= 0:
                self.near_miss = (idx, point)
        return None
