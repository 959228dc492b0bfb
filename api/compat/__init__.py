"""APIs compatible with Sequin, Supermetrics and Mage: thin translations onto the one model.

Each module holds its routes, the mapping of this service's backfills onto that system's
fields, and the error shape that system answers with, and declares them in one `Dialect`
(`api.compat.dialect`); `api.compat.registry` lists the dialects the app serves."""
