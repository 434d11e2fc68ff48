/**
 * Compile-time tests of @todo-api/client: each `@ts-expect-error` line must fail to compile (or
 * tsc reports the unused directive), so the exported types are the contract's, not `any`.
 * Never run.
 */
import {
  createTodoClient,
  isProblem,
  type components,
  type paths,
  type Task,
  type TaskCreate,
} from "@todo-api/client";

const api = createTodoClient({ baseUrl: "http://127.0.0.1:4010", getToken: () => "token" });
const user = { path: { user_id: "user_2f9a" } };

export async function typeChecks(): Promise<void> {
  // A title alone is a valid create: fields with a default stay optional.
  const minimal: TaskCreate = { title: "Buy milk" };
  const created = await api.POST("/api/{user_id}/tasks", { params: user, body: minimal });
  const task: Task | undefined = created.data;
  const total: paths["/api/{user_id}/tasks"]["get"]["responses"][200]["content"]["application/json"] = task ? [task] : [];
  const problem: components["schemas"]["Problem"] = { type: "about:blank", title: "t", status: 400, detail: "d" };
  void total;
  void problem;
  try {
    await api.GET("/api/{user_id}/tasks", { params: { ...user, query: { limit: 10, sort: "due_at" } } });
  } catch (error) {
    if (isProblem(error, 422)) {
      const messages: Record<string, string> = error.fieldErrors;
      void messages;
    }
  }
  // @ts-expect-error priority is an enum of low | medium | high
  void api.POST("/api/{user_id}/tasks", { params: user, body: { title: "x", priority: "urgent" } });
  // @ts-expect-error title is required when creating a task
  void api.POST("/api/{user_id}/tasks", { params: user, body: { priority: "low" } });
  // @ts-expect-error there is no such path
  void api.GET("/api/{user_id}/todos", { params: user });
  // @ts-expect-error task_id is an integer
  void api.GET("/api/{user_id}/tasks/{task_id}", { params: { path: { user_id: "u", task_id: "1" } } });
  // @ts-expect-error sort has no such field
  void api.GET("/api/{user_id}/tasks", { params: { ...user, query: { sort: "colour" } } });
  // @ts-expect-error getToken is required
  void createTodoClient({ baseUrl: "http://127.0.0.1:4010" });
}
