# ini2flags.awk - prints the kbridge flags equivalent to a simple INI file, one token per line
# (--name=SECTION, then --key=value per line); exits 1 when the file is not that simple: more
# than one cluster section, or a line that is not a header or key = value.
{
    sub(/\r$/, "")
    sub(/(^|[ \t])[;#].*$/, "")
    gsub(/^[ \t]+|[ \t]+$/, "")
}
$0 == "" { next }
/^\[.*\]$/ {
    name = substr($0, 2, length($0) - 2)
    gsub(/^[ \t]+|[ \t]+$/, "", name)
    if (name != "global") {
        if (++clusters > 1) { bad = 1; exit }
        print "--name=" name
    }
    next
}
/=/ {
    key = substr($0, 1, index($0, "=") - 1)
    value = substr($0, index($0, "=") + 1)
    gsub(/^[ \t]+|[ \t]+$/, "", key)
    gsub(/^[ \t]+|[ \t]+$/, "", value)
    if (key !~ /^[a-z_]+$/) { bad = 1; exit }
    gsub(/_/, "-", key)
    print "--" key "=" value
    next
}
{ bad = 1; exit }
END { exit bad }
