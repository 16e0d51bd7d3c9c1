// libavformat demuxes, libavcodec's parsers tell frame types (Debian: libavformat-dev, libavcodec-dev).
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/error.h>

// AVERROR(EAGAIN) and friends are function-like macros Swift cannot import.
static inline int vns_averror_eof(void) { return AVERROR_EOF; }
