"""Baseline filter pruners: L1-norm (Li et al., ICLR 2017) and FPGM (He et al., CVPR 2019).

They land here (issue 4), built on the `tasbench` engine and registered as pruners "l1" and "fpgm"; uniform width
scaling ships with the engine (`tasbench/uniform.py`). This package imports `tasbench` and never `tas`.
"""
