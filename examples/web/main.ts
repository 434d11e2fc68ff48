/**
 * The reference web client: one page, no framework. Signs up and in through Better Auth (served
 * by server.mjs on this page's origin), takes the JWT plugin's token, and manages the user's
 * tasks through @todo-api/client against the API on another origin.
 *
 * What it shows a front end how to do: a token cache renewed before `exp` (and after a 401, by the
 * client package, which retries once); pagination from `X-Total-Count` and `Link`; edits with
 * `If-Match` and the 412 path (show that the task changed, reload it, let the user apply again);
 * 422 field messages beside each field.
 */
import { createAuthClient } from "better-auth/client";
import { jwtClient } from "better-auth/client/plugins";

import {
  createTodoClient,
  dataOf,
  etagOf,
  isProblem,
  pageInfo,
  type PageInfo,
  type Priority,
  type Task,
  type TodoClient,
} from "@todo-api/client";

interface Config {
  apiUrl: string;
  tokenMarginSeconds: number;
}

/** What the end-to-end test reads; nothing here is needed by the page itself. */
interface Debug {
  loads: number;
  tokenFetches: number;
  tokenExpiresAt: number;
  visibleHeaders: string[];
  apiUrl: string;
}

declare global {
  interface Window {
    todoDebug: Debug;
  }
}

const debug: Debug = { loads: 0, tokenFetches: 0, tokenExpiresAt: 0, visibleHeaders: [], apiUrl: "" };
window.todoDebug = debug;

const authClient = createAuthClient({ baseURL: window.location.origin, plugins: [jwtClient()] });
const pageSize = Number(new URLSearchParams(window.location.search).get("pageSize") ?? 5);

const $ = <T extends HTMLElement>(selector: string, root: ParentNode = document): T => {
  const element = root.querySelector<T>(selector);
  if (!element) throw new Error(`${selector} is missing from the page`);
  return element;
};

let api: TodoClient;
let userId = "";
let skip = 0;
let page: PageInfo = { total: 0 };
let editing: { id: number; etag: string } | null = null;

// --- the token: one JWT from Better Auth, reused until shortly before it expires ----------------
let cached: { token: string; expiresAt: number } | null = null;
let tokenMarginMs = 30_000;

function expiryOf(token: string): number {
  const payload = token.split(".")[1] ?? "";
  const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as { exp: number };
  return claims.exp * 1000;
}

async function getToken({ refresh }: { refresh: boolean }): Promise<string | null> {
  if (!refresh && cached && cached.expiresAt - Date.now() > tokenMarginMs) return cached.token;
  const { data, error } = await authClient.token(); // GET /api/auth/token with the session cookie
  if (error || !data) {
    cached = null;
    return null;
  }
  cached = { token: data.token, expiresAt: expiryOf(data.token) };
  debug.tokenFetches += 1;
  debug.tokenExpiresAt = cached.expiresAt;
  return data.token;
}

// --- messages -------------------------------------------------------------------------------
function banner(message: string): void {
  const element = $("#banner");
  element.textContent = message;
  element.hidden = message === "";
}

function clearErrors(form: HTMLFormElement): void {
  for (const element of form.querySelectorAll(".field-error, .form-error")) element.textContent = "";
}

/** Shows an API error in `form`: 422 messages beside their fields, anything else below it. */
function showError(form: HTMLFormElement, error: unknown): void {
  if (isProblem(error, 422) && Object.keys(error.fieldErrors).length > 0) {
    for (const [field, message] of Object.entries(error.fieldErrors)) {
      const name = field.split(".")[0] ?? field; // tags.2 -> tags
      const slot = form.querySelector(`[data-error-for="${name}"]`) ?? $(".form-error", form);
      slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
    }
  } else if (isProblem(error)) {
    $(".form-error", form).textContent = error.problem.detail;
  } else {
    $(".form-error", form).textContent = `Cannot reach the API: ${String(error)}`;
  }
}

// --- tasks ----------------------------------------------------------------------------------
function fields(form: HTMLFormElement): { title: string; description: string | null; priority: Priority; tags: string[] } {
  const data = new FormData(form);
  const text = (name: string): string => String(data.get(name) ?? "");
  return {
    title: text("title"),
    description: text("description") === "" ? null : text("description"),
    priority: text("priority") as Priority,
    tags: text("tags")
      .split(",")
      .map((tag) => tag.trim())
      .filter((tag) => tag !== ""),
  };
}

function renderTask(task: Task): HTMLLIElement {
  const item = document.createElement("li");
  item.dataset.id = String(task.id);
  item.className = task.completed ? "done" : "";
  const done = document.createElement("input");
  done.type = "checkbox";
  done.className = "done";
  done.checked = task.completed;
  done.setAttribute("aria-label", `Completed: ${task.title}`);
  done.addEventListener("change", () => void complete(task.id, done.checked));
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = task.title;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = [task.priority, ...task.tags.map((tag) => `#${tag}`)].join(" ");
  const edit = document.createElement("button");
  edit.type = "button";
  edit.className = "edit";
  edit.textContent = "Edit";
  edit.addEventListener("click", () => void startEdit(task.id));
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "delete";
  remove.textContent = "Delete";
  remove.addEventListener("click", () => void removeTask(task.id));
  item.append(done, title, meta, edit, remove);
  return item;
}

async function load(): Promise<void> {
  try {
    const result = await api.GET("/api/{user_id}/tasks", {
      params: { path: { user_id: userId }, query: { skip, limit: pageSize } },
    });
    const tasks = dataOf(result);
    debug.visibleHeaders = [...result.response.headers.keys()];
    page = pageInfo(result.response);
    $("#tasks").replaceChildren(...tasks.map(renderTask));
    const shown = tasks.length === 0 ? "none shown" : `showing ${skip + 1}-${skip + tasks.length}`;
    $("#summary").textContent = `${page.total} task${page.total === 1 ? "" : "s"}, ${shown}`;
    $<HTMLButtonElement>("#prev").disabled = page.prev === undefined;
    $<HTMLButtonElement>("#next").disabled = page.next === undefined;
    banner("");
    debug.loads += 1;
  } catch (error) {
    banner(isProblem(error) ? error.problem.detail : `Cannot reach the API: ${String(error)}`);
  }
}

async function create(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const form = event.currentTarget as HTMLFormElement;
  clearErrors(form);
  const { title, description, priority, tags } = fields(form);
  const due = String(new FormData(form).get("due_at") ?? "");
  try {
    await api.POST("/api/{user_id}/tasks", {
      params: { path: { user_id: userId } },
      body: { title, description, priority, tags, due_at: due ? new Date(due).toISOString() : null },
    });
    form.reset();
    skip = 0;
    await load();
  } catch (error) {
    showError(form, error);
  }
}

async function complete(id: number, completed: boolean): Promise<void> {
  try {
    await api.PATCH("/api/{user_id}/tasks/{task_id}/complete", {
      params: { path: { user_id: userId, task_id: id } },
      body: { completed },
    });
  } catch (error) {
    banner(isProblem(error) ? error.problem.detail : `Cannot reach the API: ${String(error)}`);
  }
  await load();
}

async function removeTask(id: number): Promise<void> {
  try {
    await api.DELETE("/api/{user_id}/tasks/{task_id}", { params: { path: { user_id: userId, task_id: id } } });
  } catch (error) {
    if (!isProblem(error, 404)) banner(isProblem(error) ? error.problem.detail : String(error));
  }
  if (page.total - 1 <= skip && skip > 0) skip = Math.max(0, skip - pageSize);
  await load();
}

/** Reads the task and its ETag; with `keepInput`, the user's edits stay in the form. */
async function fetchForEdit(id: number, keepInput: boolean): Promise<Task> {
  const result = await api.GET("/api/{user_id}/tasks/{task_id}", { params: { path: { user_id: userId, task_id: id } } });
  const task = dataOf(result);
  editing = { id, etag: etagOf(result.response) ?? "*" };
  const form = $<HTMLFormElement>("#edit");
  if (!keepInput) {
    $<HTMLInputElement>("[name=title]", form).value = task.title;
    $<HTMLTextAreaElement>("[name=description]", form).value = task.description ?? "";
    $<HTMLSelectElement>("[name=priority]", form).value = task.priority;
    $<HTMLInputElement>("[name=tags]", form).value = task.tags.join(", ");
  }
  return task;
}

async function startEdit(id: number): Promise<void> {
  const form = $<HTMLFormElement>("#edit");
  clearErrors(form);
  $("#conflict").hidden = true;
  try {
    await fetchForEdit(id, false);
    $("#edit-id").textContent = `#${id}`;
    form.hidden = false;
  } catch (error) {
    banner(isProblem(error) ? error.problem.detail : String(error));
  }
}

async function saveEdit(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const form = event.currentTarget as HTMLFormElement;
  const target = editing;
  if (!target) return;
  clearErrors(form);
  const conflict = $("#conflict");
  try {
    await api.PUT("/api/{user_id}/tasks/{task_id}", {
      params: { path: { user_id: userId, task_id: target.id }, header: { "If-Match": target.etag } },
      body: fields(form),
    });
    conflict.hidden = true;
    form.hidden = true;
    editing = null;
    await load();
  } catch (error) {
    if (isProblem(error, 412)) {
      // Someone else (another tab) changed the task: take its new version and ETag, keep what the
      // user typed, and let them decide to apply it again.
      const current = await fetchForEdit(target.id, true);
      conflict.textContent =
        `This task was changed elsewhere; it now reads “${current.title}” (${current.priority}). ` +
        "It has been reloaded: press Save again to apply your changes to it.";
      conflict.hidden = false;
      await load();
    } else {
      showError(form, error);
    }
  }
}

// --- signing in -----------------------------------------------------------------------------
async function enter(): Promise<void> {
  const { data } = await authClient.getSession();
  const signedIn = Boolean(data?.user);
  $("#auth").hidden = signedIn;
  $("#app").hidden = !signedIn;
  $("#sign-out").hidden = !signedIn;
  $("#who").textContent = data?.user ? `${data.user.name} <${data.user.email}>` : "";
  if (!data?.user) return;
  userId = data.user.id;
  skip = 0;
  await load();
}

async function authSubmit(event: SubmitEvent, kind: "up" | "in"): Promise<void> {
  event.preventDefault();
  const form = new FormData(event.currentTarget as HTMLFormElement);
  const email = String(form.get("email"));
  const password = String(form.get("password"));
  const { error } =
    kind === "up"
      ? await authClient.signUp.email({ email, password, name: String(form.get("name")) })
      : await authClient.signIn.email({ email, password });
  $("#auth-error").textContent = error ? (error.message ?? error.statusText) : "";
  if (!error) await enter();
}

async function main(): Promise<void> {
  const config = (await (await fetch("/config.json")).json()) as Config;
  tokenMarginMs = config.tokenMarginSeconds * 1000;
  debug.apiUrl = config.apiUrl;
  api = createTodoClient({ baseUrl: config.apiUrl, getToken });

  $<HTMLFormElement>("#sign-up").addEventListener("submit", (event) => void authSubmit(event, "up"));
  $<HTMLFormElement>("#sign-in").addEventListener("submit", (event) => void authSubmit(event, "in"));
  $("#sign-out").addEventListener("click", () => {
    cached = null;
    void authClient.signOut().then(enter);
  });
  $<HTMLFormElement>("#create").addEventListener("submit", (event) => void create(event));
  $<HTMLFormElement>("#edit").addEventListener("submit", (event) => void saveEdit(event));
  $("#cancel-edit").addEventListener("click", () => {
    $<HTMLFormElement>("#edit").hidden = true;
    editing = null;
  });
  $("#prev").addEventListener("click", () => {
    skip = page.prev?.skip ?? 0;
    void load();
  });
  $("#next").addEventListener("click", () => {
    skip = page.next?.skip ?? skip;
    void load();
  });
  $("#reload").addEventListener("click", () => void load());
  await enter();
  document.body.dataset.ready = "true";
}

void main();
