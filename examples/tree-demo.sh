#!/usr/bin/env bash
# A three-level Genet tree on one machine (README, "Genet: the tree overlay"): a master, root of a
# tree whose nodes take at most 2 children, and six `pando work` nodes; one node that has children
# is killed mid-run. Needs `pando` on the PATH (cargo install --path cli).
set -u
cd "$(mktemp -d)" && echo "logs in $PWD"
# The master, the tree's root, with the tree's relay on port 9001.
seq 1 10000 | pando --children-limit 2 --relay-port 9001 --bind 127.0.0.1 --local 0 --token demo \
    -- sh -c 'read x; echo $((x * x))' > squares.txt 2> master.log &
sleep 1
# Six nodes that take children: 2 below the root, 4 below those.
for i in 1 2 3 4 5 6; do
  pando work --accept --reconnect --listen 127.0.0.1:0 --children-limit 2 --name "n$i" \
      'ws://127.0.0.1:9001/genet?token=demo' 2> "n$i.log" &
done
sleep 3
# Kill a node that has children: its values are lent again, its children re-join the tree.
v=$(grep -l 'local processing paused' n?.log | head -1); v=${v%.log}
pkill -KILL -f -- "--name $v " && echo "killed $v, which had children"
wait
seq 1 10000 | awk '{print $1 * $1}' | cmp - squares.txt && echo 'all 10000 results, in order'
