"""The engine: one staged procedure that every question goes through.

A question is a :class:`~reluverify.engine.query.Query`: a network, an input set and an unsafe
output condition (a disjunction of linear rows over inputs and outputs, a
:class:`~reluverify.spec.Property`). :func:`reluverify.engine.decide.decide` decides it in stages
that get more expensive: bounds (rows ruled out), falsification (:mod:`.falsify`), input splitting
or ReLU branch and bound (:mod:`.split`, :mod:`.branch`), then MILPs (:mod:`.milp`).
Questions that optimise use the same pieces: the smallest change is a search over the radius
(:mod:`.radius`), one decided question per step; the strongest wrong answer, the prototype and the
universal perturbation put an objective on the stage-5 MILP (:class:`.milp.NetworkMilp`).
Speed options that leave every bound unchanged: :mod:`.options`. The modules are imported where used (no imports here), so
that the stages can import each other's helpers without cycles.
"""
