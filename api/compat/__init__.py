"""APIs compatible with Sequin, Supermetrics and Mage: thin translations onto the one model.

Each module holds its routes, the mapping of this service's backfills onto that system's
fields, and the error shape that system answers with. `api.compat.paths` says which paths
belong to which, so the error middleware and auth can answer in the right dialect."""
