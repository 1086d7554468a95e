/* projector/migrate.h - the store's format. A store written by an older
 * version is brought to the current format before the projector folds into
 * it (format 2 added the open index, derived from the task records). */
#ifndef CB_MIGRATE_H
#define CB_MIGRATE_H
#include "cb_status.h"
#include "store.h"

/* Make a store opened for writing current: record its format and derive
 * what an older format lacks. The projector and rebuilds call it at start.
 * Errors: CB_EIO. */
CB_NODISCARD cb_status cb_store_migrate(cb_store *st);

#endif /* CB_MIGRATE_H */
