// The operator's explicit way out of a coordinator store whose write-ahead log is damaged
// (docs/operations.md, "A damaged store"). The store refuses to open then (rocksdb_store.cc:
// absolute-consistency recovery), because RocksDB's usual recovery would keep the records
// before the first damaged one and silently drop it and everything after it: committed
// rounds, task states, client records. A repair does exactly that drop, but only when asked,
// after saying what the store will hold afterwards, and logged.
//
// Not thread-safe with anything else using the directory (RocksDB's lock refuses a running
// coordinator: FAILED_PRECONDITION).
#ifndef TESSERA_COORDINATOR_STORE_REPAIR_H_
#define TESSERA_COORDINATOR_STORE_REPAIR_H_

#include <string>

#include "absl/status/statusor.h"

namespace tessera::coordinator {

// Examines the store in `directory` and returns a report for the operator (lines of text):
//   - an undamaged store: says so; nothing is changed.
//   - a damaged write-ahead log: names the log files (with sizes) and lists what the store
//     would hold after a repair (every task with its state and last committed round), and
//     what is lost (the damaged record and every later one). With `confirm` false nothing
//     is changed; with `confirm` true the store is repaired (point-in-time recovery, then
//     a flush, so that the damaged log is gone), the repair logged ("store_repaired",
//     warning), and the repaired store opened again to check it.
// Any other damage (a table file, the MANIFEST) is not repairable here: DATA_LOSS naming it
// and saying to restore a backup. NOT_FOUND if `directory` holds no store.
absl::StatusOr<std::string> RepairRocksDbStore(const std::string& directory, bool confirm);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_STORE_REPAIR_H_
