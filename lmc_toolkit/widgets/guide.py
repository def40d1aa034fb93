"""The explorer's texts for a class: what to look for in each view, and why a control is off."""

NO_BATCHNORM = (
    "BatchNorm policy: not used, these networks keep no running statistics (no BatchNorm "
    "layers), so every policy gives the same numbers."
)


WHAT_TO_LOOK_FOR = """
<ul>
<li><b>Interpolation.</b> A bump in the error between α = 0 and α = 1 is a barrier: the two
networks sit in different basins. A flat curve (within a test image or two) means they are
linearly connected. Compare the peak with the mean of the two ends.</li>
<li><b>Copies spawned at k.</b> Spawn a pair at k = 0 and at a later k: the barrier usually falls
as k grows, since SGD noise decides less once the copies share a start.</li>
<li><b>Landscape slice.</b> With "a → b", a ridge between the two markers is the barrier seen from
above; with "random", a wide low region around a is a flat minimum. Filter normalization makes
slices of different networks comparable.</li>
<li><b>Data.</b> Evaluate on the distilled images: a subnetwork found on them may be connected on
them and not on real data, or the other way round.</li>
</ul>
"""
