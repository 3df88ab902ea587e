"""Baseline pruners, registered as "uniform", "l1" and "fpgm": uniform width scaling, L1-norm (Li et al., 2017) and
FPGM (He et al., 2019).

`uniform.py`, `l1_norm.py`, `fpgm.py`; `channel_groups.py` (which channels an addition ties; slicing a net into a
smaller one), `flop_match.py` (keep counts at a FLOP target, keeping the best-scored channels). The FLOP fitting they
share is the engine's (`tasbench/flop_target.py`). This package imports `tasbench` and never `tas`.

"BASELINES.md" in these modules is docs/reference/BASELINES.md: the papers' rules and figures they follow.
"""
