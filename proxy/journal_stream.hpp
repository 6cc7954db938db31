// Operational log lines on stderr, when stderr is systemd's journal stream, start with their
// syslog priority ("<3>" error … "<7>" debug, the sd-daemon(3) prefix), so the journal files
// each line under its own priority and `journalctl -p warning` shows warnings and worse. systemd
// says how to know: it sets JOURNAL_STREAM to "DEVICE:INODE" of the stream it connected to
// stderr (systemd.exec(5)), which a program compares with fstat(2) of its own stderr — a stderr
// redirected elsewhere by the unit or a shell inherits the variable but not the stream.
#pragma once

#include <spdlog/common.h>
#include <spdlog/formatter.h>
#include <sys/types.h>

#include <memory>
#include <string_view>

namespace tlsbridge::proxy {

// True when `journal_stream` (JOURNAL_STREAM's value) names the device and inode given.
bool journal_stream_matches(std::string_view journal_stream, dev_t device, ino_t inode);

// True when this process's stderr is the journal stream systemd gave it.
bool stderr_is_journal();

// The syslog(3) priority of a level: trace and debug 7, info 6, warn 4, error 3, critical 2.
int syslog_priority(spdlog::level::level_enum level);

// "<N>[level] message": the journal keeps its own time stamp, so none is written.
std::unique_ptr<spdlog::formatter> make_journal_formatter();

}  // namespace tlsbridge::proxy
