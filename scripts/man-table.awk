# The first Markdown table after the line `marker`, as man(7) .TP entries.
# Used by man-page.sh.
function cell(s) {
    gsub(/^ +| +$/, "", s)
    gsub(/\\\|/, "\001", s)            # an escaped | inside a cell
    gsub(/\\/, "\\e", s)
    gsub(/-/, "\\-", s)
    gsub(/\001/, "|", s)
    # [text](link) -> text
    while (match(s, /\[[^]]*\]\([^)]*\)/)) {
        t = substr(s, RSTART + 1, RLENGTH)
        sub(/\]\(.*/, "", t)
        s = substr(s, 1, RSTART - 1) t substr(s, RSTART + RLENGTH)
    }
    # `code` -> bold
    out = ""
    while (match(s, /`[^`]*`/)) {
        out = out substr(s, 1, RSTART - 1) "\\fB" substr(s, RSTART + 1, RLENGTH - 2) "\\fR"
        s = substr(s, RSTART + RLENGTH)
    }
    s = out s
    gsub(/—/, "\\(em", s); gsub(/–/, "\\(en", s); gsub(/…/, "...", s); gsub(/→/, "\\(->", s)
    gsub(/×/, "\\(mu", s); gsub(/≤/, "\\(<=", s); gsub(/≥/, "\\(>=", s); gsub(/’/, "'", s)
    return s
}
function split_row(line, arr,    n, i, parts, s) {
    s = line
    gsub(/\\\|/, "\002", s)
    sub(/^\|/, "", s); sub(/\|[ \t]*$/, "", s)
    n = split(s, parts, "|")
    for (i = 1; i <= n; i++) { arr[i] = parts[i]; gsub(/\002/, "\\|", arr[i]) }
    return n
}
BEGIN { state = 0 }
state == 0 && $0 == marker { state = 1; next }
state == 1 && /^\|/ { state = 2; nh = split_row($0, head); next }
state == 2 && /^\|[-| :]+$/ { state = 3; next }
state == 3 && /^\|/ {
    n = split_row($0, c)
    print ".TP"
    name = cell(c[1]); gsub(/\\fB|\\fR/, "", name)
    print ".B " name
    mid = ""
    for (i = 2; i < n; i++) {
        v = cell(c[i])
        if (v == "" ) continue
        h = head[i]; gsub(/^ +| +$/, "", h)
        mid = mid (mid == "" ? "" : "; ") h ": " v
    }
    if (mid != "") print mid "."
    last = cell(c[n])
    if (last != "") { if (last ~ /^[.']/) last = "\\&" last; print last }
    next
}
state == 3 { exit }
