/**
 * The reference web client's scenario as a Node script, through the client package: sign-in
 * renewal (401 -> fresh token -> retry), create (with a create retried after a network error),
 * list with pagination, edit with If-Match (and the 412 path), a 422 with field messages,
 * complete, delete, 404. The same code runs against the Prism mock and the real server; against
 * the mock, the error steps add `Prefer: code=NNN` (Prism's way of choosing a response), which the
 * real server ignores, and only the real server's answers are checked for state.
 *
 *   TODO_API_URL=... TODO_API_TOKEN=... TODO_API_USER=... TODO_MODE=mock|real node scenario.js
 *
 * Prints one JSON document: {"steps": {...}, "exchanges": [every request and response]};
 * exits non-zero on the first surprise. Used by tests/frontend/test_scenario.py.
 */
import {
  createTodoClient,
  dataOf,
  etagOf,
  isProblem,
  pageInfo,
  type Task,
  type TodoClient,
} from "@todo-api/client";

interface Exchange {
  method: string;
  url: string;
  status: number;
  contentType: string | null;
  headers: Record<string, string>;
  body: string;
}

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

const baseUrl = env("TODO_API_URL");
const token = env("TODO_API_TOKEN");
const userId = env("TODO_API_USER");
const real = env("TODO_MODE") === "real";
const exchanges: Exchange[] = [];
const steps: Record<string, unknown> = {};

// Records every exchange; `dropNext` makes the next create fail as a network error after the
// server has answered it (the answer is lost on the way back).
let dropNext = false;
async function recordingFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const request = new Request(input, init);
  const response = await fetch(request);
  const body = await response.clone().text();
  exchanges.push({
    method: request.method,
    url: request.url,
    status: response.status,
    contentType: response.headers.get("Content-Type"),
    headers: Object.fromEntries(response.headers),
    body,
  });
  if (dropNext && request.method === "POST") {
    dropNext = false;
    throw new TypeError("fetch failed (the answer was lost)");
  }
  return response;
}

// Until the API has once rejected a call (401), the token cache is empty (as after a session
// ended elsewhere); the client then asks for a fresh token and retries.
let tokenCalls = 0;
let renewed = false;
const refreshes: boolean[] = [];
const api: TodoClient = createTodoClient({
  baseUrl,
  fetch: recordingFetch,
  getToken: ({ refresh }) => {
    tokenCalls += 1;
    refreshes.push(refresh);
    renewed ||= refresh;
    return renewed ? token : null;
  },
});
const mockOnly = (code: number): Record<string, string> => (real ? {} : { Prefer: `code=${code}` });
const user = { path: { user_id: userId } };
const one = (id: number) => ({ path: { user_id: userId, task_id: id } });

async function expectProblem(status: number, call: () => Promise<unknown>): Promise<Record<string, string>> {
  try {
    await call();
  } catch (error) {
    check(isProblem(error, status), `expected a ${status} problem, got ${String(error)}`);
    return { type: error.type, detail: error.problem.detail, ...error.fieldErrors };
  }
  throw new Error(`expected a ${status} problem, the call succeeded`);
}

async function main(): Promise<void> {
  const health = await api.GET("/api/health");
  steps.health = dataOf(health).status;

  const first = await api.POST("/api/{user_id}/tasks", { params: user, body: { title: "Buy milk", tags: ["home"] } });
  check(first.response.status === 201, `create: HTTP ${first.response.status}`);
  steps.renewed = { tokenCalls, refreshes: [...refreshes] };
  const task: Task = dataOf(first);
  steps.created = { id: task.id, location: first.response.headers.get("Location"), etag: etagOf(first.response) };

  dropNext = true;
  const retried = await api.POST("/api/{user_id}/tasks", {
    params: user,
    body: { title: "Write the report", priority: "high", tags: ["work"] },
  });
  const keys = exchanges.filter((e) => e.method === "POST").slice(-2);
  steps.retriedCreate = { id: dataOf(retried).id, status: retried.response.status, posts: keys.length };
  await api.POST("/api/{user_id}/tasks", { params: user, body: { title: "Call the bank", priority: "low" } });

  const page1 = await api.GET("/api/{user_id}/tasks", { params: { ...user, query: { limit: 2, sort: "title" } } });
  const info1 = pageInfo(page1.response);
  steps.page1 = { titles: dataOf(page1).map((t) => t.title), total: info1.total, next: info1.next ?? null };
  if (info1.next) {
    const page2 = await api.GET("/api/{user_id}/tasks", {
      params: { ...user, query: { limit: info1.next.limit, skip: info1.next.skip, sort: "title" } },
    });
    steps.page2 = { titles: dataOf(page2).map((t) => t.title), prev: pageInfo(page2.response).prev ?? null };
  }

  const got = await api.GET("/api/{user_id}/tasks/{task_id}", { params: one(task.id) });
  const etag = etagOf(got.response);
  check(etag !== null, "get: no ETag");
  const edited = await api.PUT("/api/{user_id}/tasks/{task_id}", {
    params: { ...one(task.id), header: { "If-Match": etag } },
    body: { title: "Buy oat milk" },
  });
  steps.edited = { title: dataOf(edited).title, etag: etagOf(edited.response) };
  steps.conflict = await expectProblem(412, () =>
    api.PUT("/api/{user_id}/tasks/{task_id}", {
      params: { ...one(task.id), header: { "If-Match": etag } },
      body: { title: "Buy soy milk" },
      headers: mockOnly(412),
    }),
  );
  steps.invalid = await expectProblem(422, () =>
    api.POST("/api/{user_id}/tasks", { params: user, body: { title: "   " }, headers: mockOnly(422) }),
  );

  const done = await api.PATCH("/api/{user_id}/tasks/{task_id}/complete", {
    params: one(task.id),
    body: { completed: true },
  });
  const patched = await api.PATCH("/api/{user_id}/tasks/{task_id}", { params: one(task.id), body: { priority: "low" } });
  steps.completed = { completed: dataOf(done).completed, priority: dataOf(patched).priority };

  const deleted = await api.DELETE("/api/{user_id}/tasks/{task_id}", { params: one(task.id) });
  steps.deleteStatus = deleted.response.status;
  steps.gone = await expectProblem(404, () =>
    api.GET("/api/{user_id}/tasks/{task_id}", { params: one(task.id), headers: mockOnly(404) }),
  );
  const rest = await api.GET("/api/{user_id}/tasks", { params: user });
  steps.remaining = { ids: dataOf(rest).map((t) => t.id), total: pageInfo(rest.response).total };

  console.log(JSON.stringify({ steps, exchanges }));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  console.error(JSON.stringify({ steps, exchanges }));
  process.exit(1);
});
