#include "cli/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

extern char** environ;

namespace vnetplan::cli {

std::string selfExecutable() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("vnetplan");
}

ChildResult runChild(const std::vector<std::string>& argv, const ChildOptions& opts) {
  using Clock = std::chrono::steady_clock;
  ChildResult r;
  const auto t0 = Clock::now();
  if (argv.empty()) {
    r.error = "nothing to run";
    return r;
  }
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> envStrings;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    std::string k = kv.substr(0, kv.find('='));
    if (!opts.env.count(k)) envStrings.push_back(std::move(kv));
  }
  for (const auto& [k, v] : opts.env) envStrings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : envStrings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argvCopy = argv;
  for (auto& s : argvCopy) args.push_back(s.data());
  args.push_back(nullptr);

  int outPipe[2], errPipe[2];
  if (::pipe2(outPipe, O_CLOEXEC) != 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  if (::pipe2(errPipe, O_CLOEXEC) != 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    ::close(outPipe[0]);
    ::close(outPipe[1]);
    return r;
  }
  const bool search = argv[0].find('/') == std::string::npos;
  pid_t pid = ::fork();
  if (pid < 0) {
    r.error = std::string("fork: ") + std::strerror(errno);
    for (int fd : {outPipe[0], outPipe[1], errPipe[0], errPipe[1]}) ::close(fd);
    return r;
  }
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull < 0 || ::dup2(devnull, 0) < 0 || ::dup2(outPipe[1], 1) < 0 || ::dup2(errPipe[1], 2) < 0) ::_exit(126);
    ::close_range(3, ~0U, 0);
    // Its own process group, so that a timeout ends what it started too (git's helpers, a shell's pipeline).
    ::setpgid(0, 0);
    ::signal(SIGPIPE, SIG_DFL);
    if (search)
      ::execvpe(args[0], args.data(), envp.data());
    else
      ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(outPipe[1]);
  ::close(errPipe[1]);
  struct pollfd fds[2] = {{outPipe[0], POLLIN, 0}, {errPipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open = 2;
  bool termSent = false;
  Clock::time_point killAt{};
  const auto deadline = t0 + opts.timeout;
  char buf[65536];
  while (open > 0) {
    int n = ::poll(fds, 2, 100);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        if (sinks[i]->size() < opts.maxOutput)
          sinks[i]->append(buf, std::min(static_cast<size_t>(got), opts.maxOutput - sinks[i]->size()));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
    const auto now = Clock::now();
    const bool cancelled = opts.cancel && opts.cancel->load();
    if (!termSent && (now >= deadline || cancelled)) {
      r.timedOut = now >= deadline;
      ::kill(-pid, SIGTERM);
      termSent = true;
      killAt = now + std::chrono::seconds(5);
    } else if (termSent && now >= killAt) {
      ::kill(-pid, SIGKILL);
      killAt = now + std::chrono::hours(1);
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) r.exitCode = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  if (r.exitCode == 127 && r.err.empty()) r.error = "cannot run " + argv[0];
  r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  return r;
}

}  // namespace vnetplan::cli
