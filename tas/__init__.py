"""TAS: Network Pruning via Transformable Architecture Search (Dong & Yang, NeurIPS 2019).

The search, its FLOP loss and the KD transfer land here (issue 3), built on the `tasbench` engine and registered
as the pruner "tas". This package imports `tasbench` and never `baselines`.
"""
