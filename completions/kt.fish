# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_kt_global_optspecs
    string join \n h/help V/version
end

function __fish_kt_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_kt_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_kt_using_subcommand
    set -l cmd (__fish_kt_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c kt -n "__fish_kt_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kt -n "__fish_kt_needs_command" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_needs_command" -f -a "gateway" -d 'Run the governance gateway'
complete -c kt -n "__fish_kt_needs_command" -f -a "policy" -d 'Validate policy configuration files'
complete -c kt -n "__fish_kt_needs_command" -f -a "events" -d 'Read the events the gateway recorded'
complete -c kt -n "__fish_kt_needs_command" -f -a "gateway-key" -d 'Create, list and revoke gateway keys'
complete -c kt -n "__fish_kt_needs_command" -f -a "chat" -d 'Send a governed prompt through a running gateway'
complete -c kt -n "__fish_kt_needs_command" -f -a "init" -d 'Write a starter policy-config.yaml'
complete -c kt -n "__fish_kt_needs_command" -f -a "generate" -d 'Generate shell completions and man pages (for packagers)'
complete -c kt -n "__fish_kt_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kt -n "__fish_kt_using_subcommand gateway; and not __fish_seen_subcommand_from run help" -s h -l help -d 'Print help'
complete -c kt -n "__fish_kt_using_subcommand gateway; and not __fish_seen_subcommand_from run help" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand gateway; and not __fish_seen_subcommand_from run help" -f -a "run" -d 'Serve the OpenAI-compatible API with the policy chain in front of every call'
complete -c kt -n "__fish_kt_using_subcommand gateway; and not __fish_seen_subcommand_from run help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from run" -l listen -d 'Address to serve on (port 0 picks a free port)' -r
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from run" -l port -d 'Shorthand for --listen 127.0.0.1:<PORT>' -r
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from run" -l policy-config -d 'Policy config file; repeat to layer files (later over earlier)' -r -F
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from run" -l fail-mode -d 'What happens when a policy itself errors' -r -f -a "block\t''
allow\t''"
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from run" -l max-concurrency -d 'Model requests (and open streams) in flight at once; more wait up to 5 s in a bounded queue, then get 503 [default: sized to the machine]' -r
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from run" -l upstream -d 'Debug only: send every target to this OpenAI-format base URL' -r
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from run" -l upstream-api-key -d 'Debug only: API key for --upstream' -r
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from run" -l upstream-api-key-header -d 'Debug only: header carrying the --upstream key' -r
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from run" -l upstream-api-key-prefix -d 'Debug only: prefix before the --upstream key' -r
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from run" -l admin-token -d 'Token for the admin endpoints (GET /v1/events, /keeptrusts/*); without one, a token is created on first run, printed once and stored hashed' -r
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from run" -l db -d 'SQLite file for keys and events [default: $KT_HOME/kt.db, KT_HOME defaulting to ~/.keeptrusts]' -r -F
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help'
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from run" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from help" -f -a "run" -d 'Serve the OpenAI-compatible API with the policy chain in front of every call'
complete -c kt -n "__fish_kt_using_subcommand gateway; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kt -n "__fish_kt_using_subcommand policy; and not __fish_seen_subcommand_from lint help" -s h -l help -d 'Print help'
complete -c kt -n "__fish_kt_using_subcommand policy; and not __fish_seen_subcommand_from lint help" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand policy; and not __fish_seen_subcommand_from lint help" -f -a "lint" -d 'Check policy-config.yaml files and report every problem with its location'
complete -c kt -n "__fish_kt_using_subcommand policy; and not __fish_seen_subcommand_from lint help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kt -n "__fish_kt_using_subcommand policy; and __fish_seen_subcommand_from lint" -s f -l file -d 'A config file or a directory of *.yaml/*.yml files (repeat to layer files)' -r -F
complete -c kt -n "__fish_kt_using_subcommand policy; and __fish_seen_subcommand_from lint" -l format -d 'Output format' -r -f -a "text\t'Summary and findings for people (colored on a terminal)'
json\t'One JSON object (an array of them for several configs)'
github\t'GitHub Actions annotations'"
complete -c kt -n "__fish_kt_using_subcommand policy; and __fish_seen_subcommand_from lint" -l json -d 'Print the result as JSON (same as --format json)'
complete -c kt -n "__fish_kt_using_subcommand policy; and __fish_seen_subcommand_from lint" -l strict -d 'Treat warnings as errors'
complete -c kt -n "__fish_kt_using_subcommand policy; and __fish_seen_subcommand_from lint" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kt -n "__fish_kt_using_subcommand policy; and __fish_seen_subcommand_from lint" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "lint" -d 'Check policy-config.yaml files and report every problem with its location'
complete -c kt -n "__fish_kt_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kt -n "__fish_kt_using_subcommand events; and not __fish_seen_subcommand_from tail export verify help" -s h -l help -d 'Print help'
complete -c kt -n "__fish_kt_using_subcommand events; and not __fish_seen_subcommand_from tail export verify help" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand events; and not __fish_seen_subcommand_from tail export verify help" -f -a "tail" -d 'Show recent events, and new ones as they arrive with --follow'
complete -c kt -n "__fish_kt_using_subcommand events; and not __fish_seen_subcommand_from tail export verify help" -f -a "export" -d 'Export events to JSON or CSV'
complete -c kt -n "__fish_kt_using_subcommand events; and not __fish_seen_subcommand_from tail export verify help" -f -a "verify" -d 'Verify the hash chain of an immutable audit log'
complete -c kt -n "__fish_kt_using_subcommand events; and not __fish_seen_subcommand_from tail export verify help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from tail" -l db -d 'SQLite file for keys and events [default: $KT_HOME/kt.db, KT_HOME defaulting to ~/.keeptrusts]' -r -F
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from tail" -l since -d 'Only events newer than this (5m, 1h, 7d or an RFC 3339 time)' -r
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from tail" -l verdict -d 'Only events with this verdict' -r -f -a "allow\t''
block\t''
redact\t''
flag\t''"
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from tail" -l policy -d 'Only events this policy blocked, redacted or flagged' -r
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from tail" -l model -d 'Only events for this model (requested or served)' -r
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from tail" -l key -d 'Only events made with this gateway key (its name)' -r
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from tail" -s n -l limit -d 'How many recent events to show first' -r
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from tail" -l format -d 'Output format' -r -f -a "line\t'One aligned line per event'
detailed\t'Every field, the policy chain trace and the routing decision'"
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from tail" -l url -d 'Read a remote gateway\'s /v1/events instead of the local database' -r
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from tail" -l admin-token -d 'Admin token for --url' -r
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from tail" -s f -l follow -d 'Keep running and print new events as they are recorded (Ctrl-C to stop)'
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from tail" -l json -d 'One JSON object per line (the event\'s stored fields)'
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from tail" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from tail" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from export" -l db -d 'SQLite file for keys and events [default: $KT_HOME/kt.db, KT_HOME defaulting to ~/.keeptrusts]' -r -F
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from export" -l since -d 'Only events newer than this (5m, 1h, 7d or an RFC 3339 time)' -r
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from export" -l verdict -d 'Only events with this verdict' -r -f -a "allow\t''
block\t''
redact\t''
flag\t''"
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from export" -l policy -d 'Only events this policy blocked, redacted or flagged' -r
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from export" -l model -d 'Only events for this model (requested or served)' -r
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from export" -l key -d 'Only events made with this gateway key (its name)' -r
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from export" -l until -d 'Only events before this (5m, 1h, 7d ago or an RFC 3339 time)' -r
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from export" -l format -d 'Output format' -r -f -a "json\t'A JSON array of events'
csv\t'A header row and one row per event (nested fields as JSON text)'"
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from export" -s o -l output -d 'Output file (default: standard output)' -r -F
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from export" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from verify" -l db -d 'SQLite file for keys and events [default: $KT_HOME/kt.db, KT_HOME defaulting to ~/.keeptrusts]' -r -F
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from verify" -l json -d 'Print the result as JSON'
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from help" -f -a "tail" -d 'Show recent events, and new ones as they arrive with --follow'
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from help" -f -a "export" -d 'Export events to JSON or CSV'
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Verify the hash chain of an immutable audit log'
complete -c kt -n "__fish_kt_using_subcommand events; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and not __fish_seen_subcommand_from create list revoke help" -s h -l help -d 'Print help'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and not __fish_seen_subcommand_from create list revoke help" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and not __fish_seen_subcommand_from create list revoke help" -f -a "create" -d 'Create a key (shown once; only its hash is stored)'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and not __fish_seen_subcommand_from create list revoke help" -f -a "list" -d 'List keys'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and not __fish_seen_subcommand_from create list revoke help" -f -a "revoke" -d 'Revoke a key by name or prefix'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and not __fish_seen_subcommand_from create list revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from create" -l db -d 'SQLite file for keys and events [default: $KT_HOME/kt.db, KT_HOME defaulting to ~/.keeptrusts]' -r -F
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from create" -l name -d 'A unique name for the key' -r
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from create" -l configuration-id -d 'The configuration (pack.name) requests with this key run under' -r
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from create" -l expires-in -d 'Lifetime: 90d, 12h, 30m or never' -r
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from create" -l team -d 'Team the key\'s requests are attributed to' -r
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from create" -l rpm -d 'Requests per minute' -r
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from create" -l tpm -d 'Tokens per minute' -r
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from create" -l budget-usd -d 'Spending limit in USD (over the key\'s lifetime)' -r
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from create" -l policy-config -d 'Policy config files the gateway loads, to check --configuration-id against' -r -F
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from create" -l json -d 'Print JSON'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from list" -l db -d 'SQLite file for keys and events [default: $KT_HOME/kt.db, KT_HOME defaulting to ~/.keeptrusts]' -r -F
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from list" -l json -d 'Print JSON'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from revoke" -l db -d 'SQLite file for keys and events [default: $KT_HOME/kt.db, KT_HOME defaulting to ~/.keeptrusts]' -r -F
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a key (shown once; only its hash is stored)'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from help" -f -a "list" -d 'List keys'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke a key by name or prefix'
complete -c kt -n "__fish_kt_using_subcommand gateway-key; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kt -n "__fish_kt_using_subcommand chat" -l url -d 'Gateway base URL' -r
complete -c kt -n "__fish_kt_using_subcommand chat" -s m -l model -d 'Model to ask for' -r
complete -c kt -n "__fish_kt_using_subcommand chat" -l system -d 'A system message' -r
complete -c kt -n "__fish_kt_using_subcommand chat" -l api-key -d 'API key to send (a gateway key or a provider key)' -r
complete -c kt -n "__fish_kt_using_subcommand chat" -l no-stream -d 'Wait for the whole answer instead of streaming it'
complete -c kt -n "__fish_kt_using_subcommand chat" -l json -d 'Print the gateway\'s raw JSON response (implies --no-stream)'
complete -c kt -n "__fish_kt_using_subcommand chat" -s h -l help -d 'Print help'
complete -c kt -n "__fish_kt_using_subcommand chat" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand init" -s o -l output -d 'Where to write the config (`-` for standard output)' -r -F
complete -c kt -n "__fish_kt_using_subcommand init" -l name -d 'Configuration name (`pack.name`; gateway keys bind to it)' -r
complete -c kt -n "__fish_kt_using_subcommand init" -l provider -d 'Provider of the first target' -r -f -a "mock\t''
openai\t''
anthropic\t''
gemini\t''
openai-compatible\t''
groq\t''
mistral\t''"
complete -c kt -n "__fish_kt_using_subcommand init" -l model -d 'Model of the first target [default: depends on the provider]' -r
complete -c kt -n "__fish_kt_using_subcommand init" -l policy -d 'A policy for the chain (repeat; in chain order) [default: every built-in one]' -r
complete -c kt -n "__fish_kt_using_subcommand init" -s y -l yes -d 'Accept the defaults without asking'
complete -c kt -n "__fish_kt_using_subcommand init" -l force -d 'Overwrite an existing file'
complete -c kt -n "__fish_kt_using_subcommand init" -s h -l help -d 'Print help'
complete -c kt -n "__fish_kt_using_subcommand init" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -s h -l help -d 'Print help'
complete -c kt -n "__fish_kt_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "completions" -d 'Write completions for a shell to standard output'
complete -c kt -n "__fish_kt_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "man" -d 'Write kt.1 and one page per subcommand into a directory'
complete -c kt -n "__fish_kt_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kt -n "__fish_kt_using_subcommand generate; and __fish_seen_subcommand_from completions" -s h -l help -d 'Print help'
complete -c kt -n "__fish_kt_using_subcommand generate; and __fish_seen_subcommand_from completions" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand generate; and __fish_seen_subcommand_from man" -l dir -r -F
complete -c kt -n "__fish_kt_using_subcommand generate; and __fish_seen_subcommand_from man" -s h -l help -d 'Print help'
complete -c kt -n "__fish_kt_using_subcommand generate; and __fish_seen_subcommand_from man" -s V -l version -d 'Print version'
complete -c kt -n "__fish_kt_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "completions" -d 'Write completions for a shell to standard output'
complete -c kt -n "__fish_kt_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "man" -d 'Write kt.1 and one page per subcommand into a directory'
complete -c kt -n "__fish_kt_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kt -n "__fish_kt_using_subcommand help; and not __fish_seen_subcommand_from gateway policy events gateway-key chat init generate help" -f -a "gateway" -d 'Run the governance gateway'
complete -c kt -n "__fish_kt_using_subcommand help; and not __fish_seen_subcommand_from gateway policy events gateway-key chat init generate help" -f -a "policy" -d 'Validate policy configuration files'
complete -c kt -n "__fish_kt_using_subcommand help; and not __fish_seen_subcommand_from gateway policy events gateway-key chat init generate help" -f -a "events" -d 'Read the events the gateway recorded'
complete -c kt -n "__fish_kt_using_subcommand help; and not __fish_seen_subcommand_from gateway policy events gateway-key chat init generate help" -f -a "gateway-key" -d 'Create, list and revoke gateway keys'
complete -c kt -n "__fish_kt_using_subcommand help; and not __fish_seen_subcommand_from gateway policy events gateway-key chat init generate help" -f -a "chat" -d 'Send a governed prompt through a running gateway'
complete -c kt -n "__fish_kt_using_subcommand help; and not __fish_seen_subcommand_from gateway policy events gateway-key chat init generate help" -f -a "init" -d 'Write a starter policy-config.yaml'
complete -c kt -n "__fish_kt_using_subcommand help; and not __fish_seen_subcommand_from gateway policy events gateway-key chat init generate help" -f -a "generate" -d 'Generate shell completions and man pages (for packagers)'
complete -c kt -n "__fish_kt_using_subcommand help; and not __fish_seen_subcommand_from gateway policy events gateway-key chat init generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kt -n "__fish_kt_using_subcommand help; and __fish_seen_subcommand_from gateway" -f -a "run" -d 'Serve the OpenAI-compatible API with the policy chain in front of every call'
complete -c kt -n "__fish_kt_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "lint" -d 'Check policy-config.yaml files and report every problem with its location'
complete -c kt -n "__fish_kt_using_subcommand help; and __fish_seen_subcommand_from events" -f -a "tail" -d 'Show recent events, and new ones as they arrive with --follow'
complete -c kt -n "__fish_kt_using_subcommand help; and __fish_seen_subcommand_from events" -f -a "export" -d 'Export events to JSON or CSV'
complete -c kt -n "__fish_kt_using_subcommand help; and __fish_seen_subcommand_from events" -f -a "verify" -d 'Verify the hash chain of an immutable audit log'
complete -c kt -n "__fish_kt_using_subcommand help; and __fish_seen_subcommand_from gateway-key" -f -a "create" -d 'Create a key (shown once; only its hash is stored)'
complete -c kt -n "__fish_kt_using_subcommand help; and __fish_seen_subcommand_from gateway-key" -f -a "list" -d 'List keys'
complete -c kt -n "__fish_kt_using_subcommand help; and __fish_seen_subcommand_from gateway-key" -f -a "revoke" -d 'Revoke a key by name or prefix'
complete -c kt -n "__fish_kt_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "completions" -d 'Write completions for a shell to standard output'
complete -c kt -n "__fish_kt_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "man" -d 'Write kt.1 and one page per subcommand into a directory'
