"""The PR gate: confidence intervals, regression rules, baselines and run comparisons.

Pure code: plain values in, plain values out; nothing here imports pytest.
"""
