#!/usr/bin/env bash
# Makes the traces this project ships in Traces/ from sources it generates itself:
#   scenes-x264-25fps-150s.csv   VBR: a 150 s video of five 30 s synthetic scenes (ffmpeg's lavfi
#                                sources, fixed seeds), encoded with libx264, traced by
#                                `vnetstream trace extract` (libavformat).
#   cbr-320kbit-25fps-150s.csv   the paper's CBR source: 320 kbit/s, 25 frames/s, 150 s.
# Deterministic: single-threaded x264 and seeded sources give the same bytes on every run.
# Usage: Traces/make-traces.sh [path/to/vnetstream]   (default: builds it with swift build)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
bin="${1:-}"
if [ -z "$bin" ]; then swift build --product vnetstream >/dev/null; bin="$(swift build --show-bin-path)/vnetstream"; fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT

size=320x240
ffmpeg -hide_banner -loglevel error -nostdin -y \
  -f lavfi -i "mandelbrot=size=$size:rate=25" \
  -f lavfi -i "life=size=$size:rate=25:seed=7:ratio=0.1:mold=10:death_color=#C83232:life_color=#00ff00" \
  -f lavfi -i "testsrc2=size=$size:rate=25" \
  -f lavfi -i "cellauto=size=$size:rate=25:seed=11:rule=110" \
  -f lavfi -i "mandelbrot=size=$size:rate=25:start_x=-0.743643887037158:start_y=-0.131825904205311:start_scale=0.5" \
  -filter_complex "[0]trim=duration=30,setpts=PTS-STARTPTS,format=yuv420p[a];[1]trim=duration=30,setpts=PTS-STARTPTS,format=yuv420p[b];[2]trim=duration=30,setpts=PTS-STARTPTS,format=yuv420p[c];[3]trim=duration=30,setpts=PTS-STARTPTS,format=yuv420p[d];[4]trim=duration=30,setpts=PTS-STARTPTS,format=yuv420p[e];[a][b][c][d][e]concat=n=5:v=1:a=0[v]" \
  -map "[v]" -c:v libx264 -threads 1 -preset medium -crf 26 -g 50 -bf 2 -pix_fmt yuv420p \
  "$work/scenes.mp4"
# From inside the work folder, so that the trace's header names the video, not a temporary path.
(cd "$work" && "$bin" trace extract scenes.mp4 -o "$here/scenes-x264-25fps-150s.csv")
"$bin" trace cbr --rate 320kbit --fps 25 --duration 150 -o "$here/cbr-320kbit-25fps-150s.csv"
