"""A trained surrogate: the network plus everything needed to use it without the training data.

:class:`Surrogate` is the model object that outlives training (the estimator → model split of
deeptime): it owns a :class:`~surrodyn.surrogate.model.FieldTFT`, the covariate normalisation,
the training time grid and the sweep spec (to turn parameters into schedules), and saves to and
loads from a directory::

    MODEL/
      config.yaml        architecture, covariates, time grid, sweep spec, training settings
      normalisation.yaml static and known-covariate statistics (training points only)
      weights.pt         state dict
      metrics.yaml       held-out metrics (written by training / evaluation)
      fingerprint.txt    hash of the training data and split
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
import yaml

from ..data.io import atomic_torch_save, atomic_write_bytes
from ..errors import ConfigError, OutputError, param_error, read_yaml_mapping
from ..sweep.design import point_config
from ..sweep.spec import SweepSpec
from .data import Normalizer, covariates_for_configs, inverse_transform, static_value, transform
from .model import FieldTFT, TFTConfig, TFTOutput

__all__ = ["Surrogate", "data_fingerprint"]

FORMAT_VERSION = 1


def data_fingerprint(*arrays: np.ndarray) -> str:
    """SHA-256 (16 hex digits) of arrays' bytes, identifying training data and split."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


class Surrogate:
    """A trained field TFT with its covariate pipeline.

    Parameters
    ----------
    network : FieldTFT
        The trained network.
    parameters : sequence of str
        Swept parameter names, in the order of the static covariates.
    static_norm, known_norm : Normalizer
        Covariate normalisation (fitted on the training points).
    time_s : numpy.ndarray
        Training time grid, ``time_s[0] = 0``.
    z : numpy.ndarray
        Bin centres as a fraction of the gap.
    spec_yaml : str
        The training sweep's spec.
    context_frames : int
        Observed frames used in continuation training (the rollout context).
    info : dict, optional
        Metadata (training settings, fingerprint, metrics), saved with the model.
    band_scale : float
        Calibration factor of the quantile spread: every quantile is moved to
        ``median + band_scale · (q − median)`` in the network's space (order preserved); fitted on
        the non-test points by :func:`surrodyn.surrogate.metrics.fit_band_scale`.
    """

    def __init__(
        self,
        network: FieldTFT,
        parameters: Sequence[str],
        static_norm: Normalizer,
        known_norm: Normalizer,
        time_s: np.ndarray,
        z: np.ndarray,
        spec_yaml: str,
        context_frames: int = 5,
        info: Mapping[str, Any] | None = None,
        band_scale: float = 1.0,
    ) -> None:
        self.network = network.eval()  # inference only; training happens on the bare network
        self.parameters = tuple(parameters)
        self.static_norm = static_norm
        self.known_norm = known_norm
        self.time_s = np.asarray(time_s, dtype=float)
        self.z = np.asarray(z, dtype=float)
        self.spec_yaml = spec_yaml
        self.context_frames = int(context_frames)
        self.info = dict(info or {})
        self.band_scale = float(band_scale)
        self.spec = SweepSpec.from_dict(yaml.safe_load(spec_yaml))

    # ------------------------------------------------------------------ covariates
    @property
    def config(self) -> TFTConfig:
        """Architecture of the network."""
        return self.network.config

    @property
    def t_ref_s(self) -> float:
        """Offset of the log-time covariate."""
        return float(self.time_s[1] / 10.0)

    def _params(self, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
        unknown = sorted(set(params) - set(self.parameters))
        missing = [p for p in self.parameters if p not in params]
        if unknown or missing:
            raise ConfigError(
                f"the surrogate takes parameters {list(self.parameters)}; missing {missing}, unknown {unknown}."
            )
        arrays = {p: np.atleast_1d(np.asarray(params[p], dtype=float)) for p in self.parameters}
        sizes = {a.size for a in arrays.values()}
        if len(sizes - {1}) > 1:
            raise param_error("parameter arrays", {k: v.size for k, v in arrays.items()}, "equal lengths (or 1)")
        n = max(sizes)
        return {p: np.broadcast_to(a, (n,)).copy() for p, a in arrays.items()}

    def configs(self, params: Mapping[str, Any], voltage: Any = None, temperature: Any = None) -> list[Any]:
        """KMC configurations of parameter sets (the training sweep's base with these values).

        Parameters
        ----------
        params : mapping
            Parameter values (arrays for many points).
        voltage, temperature : Schedule, number or schedule mapping, optional
            Replace the schedules the sweep's descriptors would give (e.g. a schedule the model
            never saw in training); YAML form as in the kMC config.
        """
        arrays = self._params(params)
        n = next(iter(arrays.values())).size
        out = [point_config(self.spec, {p: arrays[p][i] for p in self.parameters}) for i in range(n)]
        changes = {k: v for k, v in (("voltage_V", voltage), ("temperature_K", temperature)) if v is not None}
        return [c.replace(**changes) for c in out] if changes else out

    def _static(self, params: Mapping[str, Any]) -> np.ndarray:
        arrays = self._params(params)
        return self.static_norm(np.stack([static_value(p, arrays[p]) for p in self.parameters], -1))

    def _times(self, times_s: Sequence[float] | None) -> np.ndarray:
        if times_s is None:
            return self.time_s
        t = np.asarray(times_s, dtype=float)
        if t.ndim != 1 or t.size < 1 or t[0] <= 0 or np.any(np.diff(t) <= 0) or not np.all(np.isfinite(t)):
            raise param_error("times_s", times_s, "positive, strictly increasing finite times (s)")
        return np.concatenate([[0.0], t])

    # ------------------------------------------------------------------ prediction
    @torch.inference_mode()
    def forward_arrays(
        self,
        params: Mapping[str, Any],
        *,
        times_s: Sequence[float] | None = None,
        observed: np.ndarray | None = None,
        fields: np.ndarray | None = None,
        voltage: Any = None,
        temperature: Any = None,
    ) -> tuple[np.ndarray, np.ndarray, list[TFTOutput]]:
        """Predict quantile and mean fields as arrays, rolling out past the trained horizon.

        Parameters
        ----------
        params : mapping of str to array-like
            One value or an array per swept parameter (batched prediction).
        times_s : sequence of float, optional
            Record times (s, > 0); default the training grid. Longer horizons are rolled out
            autoregressively in windows of the trained length.
        observed : numpy.ndarray, optional
            (P, k, Z) or (k, Z): observed normalised densities at the first ``k`` record times
            (continuation). Default: prediction from parameters alone.
        fields : numpy.ndarray, optional
            (P, T, C, Z) known-future field covariates (normalised densities) at the record times,
            required when the model was trained with them (see :mod:`surrodyn.pipeline`).
        voltage, temperature : optional
            Schedules replacing those of the sweep's descriptors (see :meth:`configs`).

        Returns
        -------
        quantiles : numpy.ndarray
            (P, Q, T, Z) normalised density quantiles at the record times.
        mean : numpy.ndarray
            (P, T, Z) predicted ensemble mean.
        outputs : list of TFTOutput
            Raw network outputs of each rollout window (for interpretation).
        """
        t_all = self._times(times_s)
        static = torch.from_numpy(self._static(params))
        n_p = static.shape[0]
        configs = self.configs(params, voltage, temperature)
        known = self.known_norm(covariates_for_configs(configs, t_all, self.config.known_names, self.t_ref_s))
        n_z = self.z.size
        field_t = None
        if self.config.field_names:
            if fields is None:
                raise ConfigError(
                    f"this surrogate takes field covariates {list(self.config.field_names)}: pass `fields` "
                    "(surrodyn.pipeline.predict computes the continuum twin for you)."
                )
            fields = np.asarray(fields, dtype=np.float32)
            if fields.shape != (n_p, t_all.size - 1, len(self.config.field_names), n_z):
                raise param_error("fields", fields.shape, f"shape {(n_p, t_all.size - 1, 1, n_z)}")
            field_t = transform(torch.from_numpy(np.concatenate([np.ones((n_p, 1, *fields.shape[2:])), fields], 1)))
            field_t = field_t.float()
        ctx = torch.full((n_p, 1, n_z), float(np.arcsinh(1.0)))
        if observed is not None:
            obs = np.asarray(observed, dtype=np.float32)
            obs = np.broadcast_to(obs, (n_p, *obs.shape[-2:])) if obs.ndim == 2 else obs
            if obs.ndim != 3 or obs.shape[0] != n_p or obs.shape[2] != n_z or not 1 <= obs.shape[1] < t_all.size - 1:
                raise param_error("observed", obs.shape, f"(points, k, {n_z}) with 1 <= k < number of records")
            ctx = torch.cat([ctx, transform(torch.from_numpy(obs.copy()))], 1)
        n_obs = ctx.shape[1] - 1  # observed frames (after the initial state)
        z = torch.from_numpy(self.z.astype(np.float32))
        known_t = torch.from_numpy(known)
        window = self.time_s.size
        q_parts, m_parts, outputs = [], [], []
        start = 0  # index in t_all of the first context frame
        n_ctx = ctx.shape[1]
        while start + n_ctx < t_all.size:
            stop = min(start + window, t_all.size)
            f = None if field_t is None else field_t[:, start:stop]
            out = self.network(static, known_t[:, start:stop], ctx, z, f)
            outputs.append(out)
            q_parts.append(out.quantiles)
            m_parts.append(out.mean)
            if stop == t_all.size:
                break
            roll = torch.cat([ctx, out.mean], 1)
            n_ctx = min(self.context_frames + 1, roll.shape[1])
            ctx = roll[:, -n_ctx:]
            start = stop - n_ctx
        quant_t = torch.cat(q_parts, 2)
        if self.band_scale != 1.0:
            med = quant_t[:, self.config.quantiles.index(0.5)].unsqueeze(1)
            quant_t = med + self.band_scale * (quant_t - med)
        quant = inverse_transform(quant_t).numpy()
        mean = inverse_transform(torch.cat(m_parts, 1)).numpy()
        if n_obs:  # return the observed frames unchanged in front of the forecast
            obs_arr = np.broadcast_to(np.asarray(observed, dtype=np.float32), (n_p, n_obs, n_z))
            quant = np.concatenate([np.repeat(obs_arr[:, None], quant.shape[1], 1), quant], 2)
            mean = np.concatenate([obs_arr, mean], 1)
        return quant, mean, outputs

    def predict(
        self,
        params: Mapping[str, Any],
        *,
        times_s: Sequence[float] | None = None,
        observed: np.ndarray | None = None,
        fields: np.ndarray | None = None,
        voltage: Any = None,
        temperature: Any = None,
    ) -> xr.Dataset:
        """Predict the density evolution of parameter sets as a Dataset.

        Parameters are as in :meth:`forward_arrays`.

        Returns
        -------
        xarray.Dataset
            Dims ``point``, ``quantile``, ``time``, ``z``: ``density_quantile`` and ``density_mean``
            (normalised by the bulk concentration), the parameters as ``point`` coordinates, the
            applied ``voltage`` and ``temperature`` per record.
        """
        quant, mean, _ = self.forward_arrays(
            params, times_s=times_s, observed=observed, fields=fields, voltage=voltage, temperature=temperature
        )
        t = self._times(times_s)[1:]
        arrays = self._params(params)
        configs = self.configs(arrays, voltage, temperature)
        gap = float(self.spec.base.gap_m)
        coords = {
            "point": np.arange(quant.shape[0]),
            "quantile": np.array(self.config.quantiles),
            "time": ("time", t, {"units": "s"}),
            "z": ("z", self.z * gap, {"units": "m"}),
        }
        coords.update({p: ("point", arrays[p]) for p in self.parameters})
        attrs = {"units": "1", "long_name": "ion density / bulk concentration"}
        return xr.Dataset(
            {
                "density_quantile": (("point", "quantile", "time", "z"), quant, attrs),
                "density_mean": (("point", "time", "z"), mean, attrs),
                "voltage": (("point", "time"), np.stack([c.voltage_V(t) for c in configs]), {"units": "V"}),
                "temperature": (("point", "time"), np.stack([c.temperature_K(t) for c in configs]), {"units": "K"}),
            },
            coords=coords,
            attrs={
                "title": "surrodyn surrogate prediction",
                "model": "field TFT",
                "mode": "parameters only" if observed is None else "continuation",
                "fingerprint": str(self.info.get("fingerprint", "")),
            },
        )

    def explain(self, params: Mapping[str, Any], *, fields: np.ndarray | None = None) -> xr.Dataset:
        """Variable importances and attention of parameter sets (prediction from parameters alone).

        Returns
        -------
        xarray.Dataset
            ``static_importance`` (point, static), ``decoder_importance`` (point, time, decoder),
            ``attention`` (point, time, position) over the training grid.
        """
        _, _, outs = self.forward_arrays(params, fields=fields)
        out = outs[0]
        c = self.config
        t = self.time_s
        return xr.Dataset(
            {
                "static_importance": (("point", "static"), out.static_weights.numpy()),
                "encoder_importance": (("point", "encoder_step", "encoder"), out.encoder_weights.numpy()),
                "decoder_importance": (("point", "time", "decoder"), out.decoder_weights.numpy()),
                "attention": (("point", "time", "position"), out.attention.numpy()),
            },
            coords={
                "static": list(c.static_names),
                "encoder": ["observed_density", *c.known_names, *c.field_names],
                "decoder": [*c.known_names, *c.field_names],
                "time": t[1:],
                "position": t,
            },
            attrs={"title": "surrodyn surrogate interpretation", "mode": "parameters only"},
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the model directory (atomically per file); return its path."""
        path = Path(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create model directory {path}: {err}") from err
        config = {
            "format_version": FORMAT_VERSION,
            "network": self.config.to_dict(),
            "parameters": list(self.parameters),
            "time_s": self.time_s.tolist(),
            "z_fraction": self.z.tolist(),
            "context_frames": self.context_frames,
            "band_scale": self.band_scale,
            "sweep_spec": yaml.safe_load(self.spec_yaml),
            "info": _plain(self.info),
        }
        atomic_torch_save(path / "weights.pt", self.network.state_dict())
        norm = {"static": self.static_norm.to_dict(), "known": self.known_norm.to_dict()}
        atomic_write_bytes(path / "normalisation.yaml", yaml.safe_dump(norm, sort_keys=False).encode())
        atomic_write_bytes(path / "config.yaml", yaml.safe_dump(config, sort_keys=False).encode())
        atomic_write_bytes(path / "fingerprint.txt", f"{self.info.get('fingerprint', '')}\n".encode())
        if "metrics" in self.info:
            atomic_write_bytes(path / "metrics.yaml", yaml.safe_dump(_plain(self.info["metrics"])).encode())
        return path

    @classmethod
    def load(cls, path: str | Path) -> Surrogate:
        """Load a model directory written by :meth:`save` (no training data needed)."""
        path = Path(path)
        if not (path / "config.yaml").is_file() or not (path / "weights.pt").is_file():
            raise ConfigError(f"{path} is not a surrogate model directory (config.yaml and weights.pt expected).")
        config = read_yaml_mapping(path / "config.yaml", "surrogate config")
        if config.get("format_version") != FORMAT_VERSION:
            raise ConfigError(f"{path}: model format {config.get('format_version')}, this code reads {FORMAT_VERSION}.")
        norm = read_yaml_mapping(path / "normalisation.yaml", "surrogate normalisation")
        network = FieldTFT(TFTConfig.from_dict(config["network"]))
        network.load_state_dict(torch.load(path / "weights.pt", weights_only=True))
        network.eval()
        return cls(
            network,
            config["parameters"],
            Normalizer.from_dict(norm["static"]),
            Normalizer.from_dict(norm["known"]),
            np.asarray(config["time_s"]),
            np.asarray(config["z_fraction"]),
            yaml.safe_dump(config["sweep_spec"], sort_keys=False),
            config.get("context_frames", 5),
            config.get("info", {}),
            config.get("band_scale", 1.0),
        )


def _plain(value: Any) -> Any:
    """Convert NumPy scalars/arrays in nested containers to plain Python (for YAML)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
