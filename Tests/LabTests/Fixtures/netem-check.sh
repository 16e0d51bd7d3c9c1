#!/bin/bash
# Runs inside `vnetstream lab vm`: builds a one-path lab shaped by netem and measures it with
# real traffic. Prints the lab's shaper, ping's round trips over the 50 ms link, and the
# receiver's and sender's JSON results, each on a line of its own after a marker.
# Usage: netem-check.sh VNETSTREAM TOPOLOGY
set -euo pipefail
bin=$1
topology=$2
"$bin" lab up "$topology" --id vm --wait 90
trap '"$bin" lab down --id vm > /dev/null' EXIT
echo "SHAPER $("$bin" lab status --id vm --json | tr -d '\n ' | sed 's/.*"shaper":"\([a-z]*\)".*/\1/')"
# in:mid is the first link: 198.19.0.1 <-> 198.19.0.2, 50 ms each way.
echo "PING $("$bin" lab exec --id vm in /bin/busybox ping -c 10 -i 0.2 198.19.0.2 | tail -1)"
"$bin" lab exec --id vm dst "$bin" recv --json-file /tmp/vm-r.json --idle-timeout 5 --linger 2 > /dev/null &
receiver=$!
sleep 2
"$bin" lab exec --id vm src "$bin" send --cbr 2mbit --fps 50 --duration 5 --mode uni --vnet tun0 --to 198.18.100.1:5004 --json-file /tmp/vm-s.json > /dev/null
wait $receiver
echo "RECEIVER $(tr -d '\n' < /tmp/vm-r.json)"
echo "SENDER $(tr -d '\n' < /tmp/vm-s.json)"
