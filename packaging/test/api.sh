# Shell helpers for the package tests: sign in, find #general, post and
# read messages through Hearth's HTTP API. Sourced by .ci/test-deb and
# .ci/test-arm-qemu; needs curl and jq.
#
# CURL may be set to a command prefix that runs curl elsewhere (e.g. inside
# a container's network namespace); API_JAR is the cookie jar.

: "${CURL:=curl}"

# api_curl ARGS... — curl with the test defaults: quiet, insecure (the
# local CA is not trusted by the host), bounded in time, failing on HTTP
# errors with the body on stderr.
api_curl() {
	local out code
	out=$($CURL -sS -k --max-time 20 -b "$API_JAR" -c "$API_JAR" -w '\n%{http_code}' "$@") || return 1
	code=${out##*$'\n'}
	out=${out%$'\n'*}
	if [ "${code:0:1}" != 2 ]; then
		echo "api: $* -> HTTP $code: $out" >&2
		return 1
	fi
	printf '%s\n' "$out"
}

# api_login BASE NAME PASSWORD — signs in; sets API_CSRF.
api_login() {
	local body
	body=$(jq -cn --arg n "$2" --arg p "$3" '{name:$n,password:$p}')
	API_CSRF=$(api_curl -X POST -H 'Content-Type: application/json' -H 'X-Hearth-CSRF: 1' \
		--data "$body" "$1/api/v1/auth/login" | jq -er .csrf) || return 1
}

# api_general BASE — prints the id of #general.
api_general() {
	api_curl "$1/api/v1/channels" | jq -er '.channels[] | select(.name == "general") | .id'
}

# api_post BASE CHANNEL TEXT — posts a message as the signed-in user.
api_post() {
	local body
	body=$(jq -cn --arg t "$3" '{text:$t}')
	api_curl -X POST -H 'Content-Type: application/json' -H "X-Hearth-CSRF: $API_CSRF" \
		--data "$body" "$1/api/v1/channels/$2/messages" >/dev/null
}

# api_has_message BASE CHANNEL TEXT — succeeds when the channel's latest
# messages include TEXT.
api_has_message() {
	api_curl "$1/api/v1/channels/$2/messages?limit=100" |
		jq -e --arg t "$3" '[.messages[] | select(.text == $t)] | length > 0' >/dev/null
}
