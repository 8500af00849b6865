# loop-spills.awk: for every innermost loop of verbose x86 assembly (llc's
# "Inner Loop Header" comment to the branch back to its label) that has
# integer dot products (vpdpbusd, vpmaddubsw), prints how many it has and how
# many spills and reloads ("N-byte Spill" / "Reload" comments).
/^\.LBB[0-9_]+:/ { lbl=$1; sub(":","",lbl) }
/Inner Loop Header/ { inloop=1; head=lbl; sp=0; q=0; next }
inloop && /byte (Spill|Reload)/ { sp++ }
inloop && /vpmaddubsw|vpdpbusd/ { q++ }
inloop && $1 ~ /^j/ && $2 == head { if (q) print head, "quant-ops", q, "spills", sp; inloop=0 }
