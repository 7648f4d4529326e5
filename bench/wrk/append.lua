-- wrk script for bench/http_bench.py: POST /v1/interactions with a JSON body and a bearer token.
-- The token comes from CASELEDGER_BENCH_TOKEN. Each request gets its own case (among 10,000) and
-- customer (among CASELEDGER_BENCH_CUSTOMERS, default 100: the subjects the bench warms up).
local token = os.getenv("CASELEDGER_BENCH_TOKEN")
if not token or token == "" then
  error("CASELEDGER_BENCH_TOKEN is not set")
end
local customers = tonumber(os.getenv("CASELEDGER_BENCH_CUSTOMERS") or "100")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token

-- ~300 bytes of free text, as in the ledger benchmarks' workload
local note = string.rep("Customer called about a billing question; agent explained the charge. ", 4)

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local counter = 0
function request()
  counter = counter + 1
  local n = (tid or 0) * 1000003 + counter
  local body = string.format(
    '{"case":"C-%d","channel":"phone","direction":"inbound","subject_ref":"CRM-%d",' ..
    '"content":{"note":"%s","n":%d},"meta":{"queue":"billing"}}',
    n % 10000, n % customers, note, n)
  return wrk.format(nil, nil, nil, body)
end
