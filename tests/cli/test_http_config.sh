# The http source from a new user's side: the configuration reference documents every option (a row without a
# description fails here, for every table), every key of the http source and a worked example per pagination kind;
# `sluice check` refuses the mistakes issue 20 observed (pagination without its placeholder, a placeholder without
# pagination, an unknown placeholder, uuid() on a primary-key column) with a message that says why.
. "$(dirname "$0")/lib.sh"
SEED="$SL_SOURCE_DIR/examples/seed/sluice.yaml"

"$SLUICE" config-doc > "$TMP/ref.md" || bad "config-doc failed"
# Every option row: | `key` | type | default | description | with a description that is not empty.
undocumented=$(grep -E '^\| `[^`]+` \|' "$TMP/ref.md" | awk -F' \\| ' '{ d=$NF; sub(/ *\|$/, "", d); if (d == "") print $1 }')
[ -z "$undocumented" ] && ok || bad "options without a description in config-doc: $undocumented"
section() { awk -v h="### \`$1\`" '$0 == h {on=1; next} /^### / {on=0} on' "$TMP/ref.md"; }
http=$(section "pipelines.<name>.source (type: http)")
for k in type url method body count headers auth records_path single_record record_type pagination poll_interval \
         rate_limit timeout connect_timeout max_response max_bad_pages dlq_max_bytes concurrency max_retries backoff \
         backoff_max retry_after_max user_agent; do
  case "$http" in *"| \`$k\` |"*) ok;; *) bad "http source key '$k' is not in the configuration reference";; esac
done
pag=$(section "pipelines.<name>.source (type: http).pagination")
for k in type start limit cursor_path next_url_path stop_on_empty; do
  case "$pag" in *"| \`$k\` |"*) ok;; *) bad "pagination key '$k' is not documented";; esac
done
auth=$(section "pipelines.<name>.source (type: http).auth")
for k in type user password_env token_env name value_env in; do
  case "$auth" in *"| \`$k\` |"*) ok;; *) bad "auth key '$k' is not documented";; esac
done
rate=$(section "pipelines.<name>.source (type: http).rate_limit")
for k in per_second burst; do
  case "$rate" in *"| \`$k\` |"*) ok;; *) bad "rate_limit key '$k' is not documented";; esac
done
for ex in "type: page" "type: offset" "type: cursor, cursor_path" "type: link" "type: next_url" "updated_since={cursor}"; do
  grep -qF "$ex" "$TMP/ref.md" && ok || bad "no worked example with '$ex'"
done

# A config with an http source; $1 is the source's YAML (indented 6), $2 the id column's spec.
cfg() {
  cat > "$TMP/$3.yaml" <<Y
data_dir: $TMP/data
pipelines:
  users:
    source:
$1
    topic: t_users
    key: id
    mapping:
      id: $2
      name: name.first
    sink: { keyspace: ks, table: users }
Y
  echo "$TMP/$3.yaml"
}
ID='{ path: login.uuid, type: uuid }'
f=$(cfg '      type: http
      url: "http://127.0.0.1:1/api?results=10"
      pagination: { type: page }' "$ID" nopage)
expect_fail "pagination page without {page}" "pagination is page but the url has no {page}" "same page" -- "$SLUICE" check -c "$f"
f=$(cfg '      type: http
      url: "http://127.0.0.1:1/api?page={page}&results=10"' "$ID" nopag)
expect_fail "{page} without pagination" "has {page} but pagination is none" "type: page" -- "$SLUICE" check -c "$f"
f=$(cfg '      type: http
      url: "http://127.0.0.1:1/api?cursor=x"
      pagination: { type: cursor }' "$ID" nocursor)
expect_fail "cursor without {cursor}" "pagination is cursor but the url has no {cursor}" -- "$SLUICE" check -c "$f"
f=$(cfg '      type: http
      url: "http://127.0.0.1:1/api?p={pgae}"
      pagination: { type: page }' "$ID" typo)
expect_fail "unknown placeholder" "unknown parameter {pgae}" -- "$SLUICE" check -c "$f"
f=$(cfg '      type: http
      url: "http://127.0.0.1:1/api?page={page}&results=10"
      pagination: { type: page }' "$ID" good)
expect_ok "a good http source" "ok: 1 pipeline" -- "$SLUICE" check -c "$f"
f=$(cfg '      type: http
      url: "http://127.0.0.1:1/api?page={page}&results=10"
      pagination: { type: page }' '{ path: login.uuid, type: uuid, default: "uuid()" }' uuidkey)
expect_fail "uuid() on the key" "uuid() on a primary-key column" "second row" "random_keys: true" -- "$SLUICE" check -c "$f"
sed -i 's/^    key: id/    key: id\n    random_keys: true/' "$f"
expect_ok "uuid() on the key, random_keys: true" "ok: 1 pipeline" -- "$SLUICE" check -c "$f"
finish
