"""Analysis of MD trajectories of metal nanoclusters: descriptors, basins, transitions, morphologies.

- :mod:`.descriptors`: per-frame structural descriptors (Steinhardt order, common-neighbour
  analysis, coordination and pair-distance histograms) behind a small :class:`FrameDescriptor`
  contract users can implement.
- :mod:`.basins`: :class:`BasinFinder`, standardise → t-SNE → DBSCAN (k-distance knee) → merge.
- :mod:`.transitions`: transition temperatures from the basin switch, the heat capacity and the
  Lindemann index; energy-based phase labels.
- :mod:`.morphology`: medoids, inherent structures, CNA labels.
- :mod:`.ramp_analysis`: all of it on one ramp (:func:`analyse_ramp`), with a report and figures.
"""

from .basins import BasinFinder, knee_radius, merge_by_valley, merge_fragments, valley_profile, valley_ratio
from .descriptors import (
    DESCRIPTOR_PRESETS,
    CNAFractions,
    CoordinationHistogram,
    DescriptorSet,
    FrameDescriptor,
    RadialDistribution,
    SOAPAverage,
    Steinhardt,
    cna_signatures,
    compute_descriptors,
    default_descriptors,
    descriptor_preset,
    nearest_neighbour_cutoff,
    neighbor_pairs,
    steinhardt,
)
from .morphology import MORPHOLOGIES, classify_cna, quench, representatives
from .ramp_analysis import BasinAnalysis, analyse_ramp, read_frames, summarize
from .transitions import (
    energy_phase_labels,
    heat_capacity,
    lindemann_index,
    smooth_labels,
    switch_temperatures,
)

__all__ = [
    "DESCRIPTOR_PRESETS",
    "MORPHOLOGIES",
    "BasinAnalysis",
    "BasinFinder",
    "CNAFractions",
    "CoordinationHistogram",
    "DescriptorSet",
    "FrameDescriptor",
    "RadialDistribution",
    "SOAPAverage",
    "Steinhardt",
    "analyse_ramp",
    "classify_cna",
    "cna_signatures",
    "compute_descriptors",
    "default_descriptors",
    "descriptor_preset",
    "energy_phase_labels",
    "heat_capacity",
    "knee_radius",
    "lindemann_index",
    "merge_by_valley",
    "merge_fragments",
    "nearest_neighbour_cutoff",
    "neighbor_pairs",
    "quench",
    "read_frames",
    "representatives",
    "smooth_labels",
    "steinhardt",
    "summarize",
    "switch_temperatures",
    "valley_profile",
    "valley_ratio",
]
