// vnetplan entry point: everything lives in the core library (cli/app.cpp).
#include "base/retain.h"
#include "cli/app.h"

#include <malloc.h>

int main(int argc, char** argv) {
  // A command runs once and exits: what it built is left for the exit to reclaim (base/retain.h). 'serve'
  // turns this off for itself.
  vnetplan::setOneShotProcess(true);
  // Every heap grows 16 MiB ahead of what it needs. glibc's default grows a thread's heap by what each
  // allocation lacks, one mprotect per step: the observe and the diff, which build thousands of objects on
  // worker threads, paid a system call per few pages (under emulation, ~5% of a no-op plan's CPU; measured in
  // the stock-kernel lane). Untouched pages of that reserve cost no memory.
  mallopt(M_TOP_PAD, 16 << 20);
  return vnetplan::cli::run(argc, argv);
}
