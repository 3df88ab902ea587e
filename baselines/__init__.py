"""Baseline filter pruners, registered as "l1" and "fpgm": L1-norm (Li et al., 2017) and FPGM (He et al., 2019).

`channel_groups.py` (which channels an addition ties; slicing a net into a smaller one), `flop_match.py` (keep counts
at a FLOP target, keeping the best-scored channels), `l1_norm.py`, `fpgm.py`. Uniform width scaling ships with the
engine (`tasbench/uniform.py`). This package imports `tasbench` and never `tas`.
"""
