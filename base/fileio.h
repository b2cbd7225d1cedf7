// File I/O that every writer here needs: whole-buffer reads and writes (EINTR and short transfers handled), and
// the atomic, durable replacement of a file (temp file + fsync + rename + fsync of the directory).
#pragma once
#include <string>

#include "base/result.h"

namespace vnetplan {

Status writeAll(int fd, const std::string& bytes);
Result<std::string> readAll(int fd);

// Replaces `name` in the directory `dirfd` with `bytes`, atomically and durably: a reader sees the old content or
// the new, never a mix, and after a crash the new content is there once this returned ok. The temp file is
// created with O_EXCL | O_NOFOLLOW (a planted symlink is never followed) and named `.tmp.<pid>.<random>`, so
// `removeStaleTemps` can clean up after a writer that was killed. The error says which system call failed.
Status atomicWriteAt(int dirfd, const std::string& name, const std::string& bytes, int mode = 0600);
// The same for a path: the directory is opened (never through a symlink in its last component).
Status atomicWriteFile(const std::string& path, const std::string& bytes, int mode = 0600);
// Removes `.tmp.<pid>.*` files in `dirfd` whose writer process no longer runs. Returns how many were removed.
int removeStaleTemps(int dirfd);

// Opens a regular file for reading without following a symlink in its last component and without blocking on a
// FIFO or device: anything that is not a regular file is refused with a clear error ("not a regular file").
Result<int> openRegularForRead(int dirfd, const std::string& name);

}  // namespace vnetplan
