-- wrk script: POST the same JSON body on every request.
-- BENCH_BODY: the body (required); BENCH_KEY: a bearer token (optional).
-- No response() callback on purpose: it would make wrk parse every answer and steal CPU from
-- the server on a 2-core machine. http-check.sh checks one answer with curl before each load.
local body = os.getenv("BENCH_BODY")
if body == nil or body == "" then
  error("BENCH_BODY is not set")
end
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key ~= nil and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end
