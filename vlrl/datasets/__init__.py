"""Chart corpora used for training and evaluation: the synthetic corpus (vlrl.datasets.synth),
its on-disk form (vlrl.datasets.corpus) and the loaders of chart/code pairs (vlrl.datasets.charts).

Nothing is imported here, so that loading one part (the spy game needs only the
perturbations) does not load the others.
"""
