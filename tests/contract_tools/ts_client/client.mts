/**
 * A small front-end client of the Todo API, typed by generated/ts/api.d.ts through openapi-fetch.
 *
 * tests/contract_tools/test_ts_client.py type-checks it (tsc --noEmit, strict), compiles it and
 * runs it with node against a live server: create -> list -> complete -> delete. It prints one
 * JSON line of what it saw and exits non-zero on the first surprise.
 */
import createClient, { type Middleware } from "openapi-fetch";

import type { components, paths } from "../../../generated/ts/api.js";

type Task = components["schemas"]["Task"];

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

// In a Next.js app the token comes from Better Auth (authClient.token()); here from the test.
const auth: Middleware = {
  onRequest({ request }) {
    request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
};

const api = createClient<paths>({ baseUrl });
api.use(auth);
const user = { path: { user_id: userId } };

async function main(): Promise<void> {
  const created = await api.POST("/api/{user_id}/tasks", {
    params: user,
    body: { title: "Buy milk", priority: "high", tags: ["home"] },
  });
  check(created.response.status === 201, `create: HTTP ${created.response.status}`);
  check(created.data !== undefined, "create: no body");
  const task: Task = created.data;
  check(task.title === "Buy milk" && task.priority === "high", "create: wrong task");
  check(task.completed === false, "create: a new task is not completed");

  const listed = await api.GET("/api/{user_id}/tasks", {
    params: { ...user, query: { status: "pending", priority: "high" } },
  });
  check(listed.response.status === 200 && listed.data !== undefined, "list failed");
  const ids = listed.data.map((t) => t.id);
  check(ids.includes(task.id), `list: ${task.id} missing from ${JSON.stringify(ids)}`);
  const total = Number(listed.response.headers.get("X-Total-Count"));

  const completed = await api.PATCH("/api/{user_id}/tasks/{task_id}/complete", {
    params: { path: { user_id: userId, task_id: task.id } },
    body: { completed: true },
  });
  check(completed.response.status === 200 && completed.data !== undefined, "complete failed");
  check(completed.data.completed === true, "complete: task is not completed");

  const deleted = await api.DELETE("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id: userId, task_id: task.id } },
  });
  check(deleted.response.status === 204, `delete: HTTP ${deleted.response.status}`);

  const gone = await api.GET("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id: userId, task_id: task.id } },
  });
  check(gone.response.status === 404 && gone.error !== undefined, "deleted task still there");
  // Errors are typed as the contract's Problem document.
  const problem: components["schemas"]["Problem"] = gone.error;

  console.log(
    JSON.stringify({
      created: task,
      listedIds: ids,
      listedTotal: total,
      completed: completed.data.completed,
      deleteStatus: deleted.response.status,
      afterDelete: { status: gone.response.status, problem },
      apiVersion: gone.response.headers.get("API-Version"),
    }),
  );
}

/** Never called: each line must fail to compile, which proves the types are not `any`. */
export function typeChecks(): void {
  // @ts-expect-error priority is an enum of low | medium | high
  void api.POST("/api/{user_id}/tasks", { params: user, body: { title: "x", priority: "urgent" } });
  // @ts-expect-error title is required when creating a task
  void api.POST("/api/{user_id}/tasks", { params: user, body: { priority: "low" } });
  // @ts-expect-error there is no such path
  void api.GET("/api/{user_id}/todos", { params: user });
  // @ts-expect-error task_id is an integer
  void api.GET("/api/{user_id}/tasks/{task_id}", { params: { path: { user_id: userId, task_id: "1" } } });
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
