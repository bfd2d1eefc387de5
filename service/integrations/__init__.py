"""tunesmith inside the tuning libraries people already use.

- `service.integrations.optuna.TunesmithSampler`: an Optuna sampler running tunesmith's GP
  engine in-process; optionally mirrors the study to a tunesmith server.
- `service.integrations.keras_tuner.TunesmithOracle`: a KerasTuner oracle whose trials come
  from a study on a tunesmith server.
- `service.integrations.ray_tune.TunesmithSearch`: a Ray Tune searcher whose trials come from
  a study on a tunesmith server.

Importing this package imports none of Optuna, KerasTuner or Ray: each submodule imports its
host library, so only the integration in use needs its library installed.
"""
