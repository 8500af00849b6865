# loop-spills.awk: for every innermost loop of verbose x86 assembly (llc's
# "Inner Loop Header" comment to the branch back to its label) that has
# integer dot products (vpdpbusd, vpmaddubsw), prints how many it has, how
# many registers it spills ("N-byte Spill" comments: stores to the stack)
# and how many it reloads ("Reload": loads from it).
/^\.LBB[0-9_]+:/ { lbl=$1; sub(":","",lbl) }
/Inner Loop Header/ { inloop=1; head=lbl; sp=0; rl=0; q=0; next }
inloop && /byte Spill/ { sp++ }
inloop && /byte( Folded)? Reload/ { rl++ }
inloop && /vpmaddubsw|vpdpbusd/ { q++ }
inloop && $1 ~ /^j/ && $2 == head { if (q) print head, "quant-ops", q, "spills", sp, "reloads", rl; inloop=0 }
