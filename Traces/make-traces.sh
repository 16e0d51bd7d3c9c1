#!/usr/bin/env bash
# Makes the traces this project ships in Traces/ from sources it generates itself:
#   scenes-x264-25fps-150s.csv   VBR: a 150 s video of five 30 s synthetic scenes (ffmpeg's lavfi
#                                sources, fixed seeds), encoded with libx264, traced by
#                                `vnetstream trace extract` (libavformat).
#   cbr-320kbit-25fps-150s.csv   the paper's CBR source: 320 kbit/s, 25 frames/s, 150 s.
#   scenes-x264-25fps-12min.csv  VBR: 12 minutes of eight 90 s synthetic scenes of very different
#                                complexity, encoded the same way: long enough that `trace fit`
#                                finds a 150 s part with the paper's 1-second peak-to-mean
#                                (620/320). The multi-net experiment's VBR source falls back to it
#                                when the TKN trace (../shared/traces) is not there.
# Deterministic on one machine (single-threaded x264, seeded sources); another ffmpeg/x264 build
# gives slightly different frame sizes, so the committed traces are the reference.
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
# Eight scenes of 90 s, each with its own amount of temporal noise: noise makes every frame
# cost (P frames near I frames, so a scene's own 1-second peak-to-mean stays near 1.2) and its
# strength sets the scene's rate. Neighbouring scenes differ two- to fourfold, so 150 s windows
# across a cut have every peak-to-mean from about 1.2 to well above 2. (Scenes of 60 s with
# lavfi's mandelbrot and life in them gave no window below 2.46: those sources' own peaks, and
# no window held enough of one scene.)
scenes=(
  "testsrc2=size=$size:rate=25"
  "smptebars=size=$size:rate=25"
  "testsrc2=size=$size:rate=25"
  "cellauto=size=$size:rate=25:seed=11:rule=110"
  "testsrc=size=$size:rate=25"
  "smptehdbars=size=$size:rate=25"
  "testsrc2=size=$size:rate=25"
  "rgbtestsrc=size=$size:rate=25"
)
noise=(12 32 16 10 40 20 48 14)
inputs=(); chains=""; labels=""
for i in "${!scenes[@]}"; do
  inputs+=(-f lavfi -i "${scenes[$i]}")
  chains+="[$i]trim=duration=90,setpts=PTS-STARTPTS,format=yuv420p,noise=alls=${noise[$i]}:allf=t+u:all_seed=$((i + 1))[s$i];"
  labels+="[s$i]"
done
ffmpeg -hide_banner -loglevel error -nostdin -y "${inputs[@]}" \
  -filter_complex "${chains}${labels}concat=n=${#scenes[@]}:v=1:a=0[v]" \
  -map "[v]" -c:v libx264 -threads 1 -preset medium -crf 26 -g 50 -bf 2 -pix_fmt yuv420p \
  "$work/scenes-12min.mp4"
(cd "$work" && "$bin" trace extract scenes-12min.mp4 -o "$here/scenes-x264-25fps-12min.csv")
"$bin" trace cbr --rate 320kbit --fps 25 --duration 150 -o "$here/cbr-320kbit-25fps-150s.csv"
