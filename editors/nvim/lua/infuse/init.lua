-- infuse for Neovim: starts `infuse serve` for the buffers it completes in,
-- passes it the options of setup(), and shows its suggestions:
--
--   Neovim 0.12+   ghost text through vim.lsp.inline_completion
--   older          completion items, through 'completefunc' (<C-x><C-u>) and
--                  the LSP sources of nvim-cmp or blink.cmp
--
-- The client is registered with vim.lsp.config/vim.lsp.enable on 0.11+,
-- started with vim.lsp.start on 0.8-0.10, and with vim.lsp.start_client on
-- 0.7.

local config = require('infuse.config')
local api = vim.api
local has = config.has
local uv = vim.uv or vim.loop

local M = {}

local state = {
  opts = nil, -- resolved options; nil until setup()
  paused = false,
  last_ms = nil, -- latency of the last completion this plugin asked for
  stopping = {}, -- client ids stopped on purpose: their exit is not a failure
  clients = {}, -- Neovim 0.7: root_dir -> client id
  reported = {}, -- messages shown once per session
}

local group = api.nvim_create_augroup('infuse', { clear = true })

local function notify(msg, level)
  vim.notify('infuse: ' .. msg, level or vim.log.levels.INFO)
end

local function notify_once(key, msg, level)
  if not state.reported[key] then
    state.reported[key] = true
    notify(msg, level)
  end
end

-- call runs a method of a client object: client:request(...) on 0.11+,
-- where the dotted form is deprecated, client.request(...) before.
local function call(client, method, ...)
  if has('0.11') then
    return client[method](client, ...)
  end
  return client[method](...)
end

-- get_clients returns the running infuse clients, of bufnr if given.
local function get_clients(bufnr)
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ name = 'infuse', bufnr = bufnr })
  end
  if has('0.8') then
    return vim.lsp.get_active_clients({ name = 'infuse', bufnr = bufnr })
  end
  local out = {}
  local all = bufnr and vim.lsp.buf_get_clients(bufnr) or vim.lsp.get_active_clients()
  for _, c in pairs(all) do
    if c.name == 'infuse' then
      table.insert(out, c)
    end
  end
  return out
end

--- The infuse client attached to bufnr (0 or nil: the current buffer), if any.
function M.get_client(bufnr)
  if bufnr == nil or bufnr == 0 then
    bufnr = api.nvim_get_current_buf()
  end
  return get_clients(bufnr)[1]
end

-- Positions -----------------------------------------------------------------

-- lsp_col converts a byte column of line to the client's position encoding.
local function lsp_col(line, col, encoding)
  if encoding == 'utf-8' then
    return col
  end
  local units, i = 0, 1
  while i <= col and i <= #line do
    local b = line:byte(i)
    local len = b >= 0xF0 and 4 or b >= 0xE0 and 3 or b >= 0xC0 and 2 or 1
    units = units + ((encoding == 'utf-16' and len == 4) and 2 or 1)
    i = i + len
  end
  return units
end

-- byte_col converts a position's character of line back to a byte column.
local function byte_col(line, character, encoding)
  if encoding == 'utf-8' then
    return math.min(character, #line)
  end
  local units, i = 0, 1
  while i <= #line and units < character do
    local b = line:byte(i)
    local len = b >= 0xF0 and 4 or b >= 0xE0 and 3 or b >= 0xC0 and 2 or 1
    units = units + ((encoding == 'utf-16' and len == 4) and 2 or 1)
    i = i + len
  end
  return i - 1
end

-- Completion items ----------------------------------------------------------

--- items turns a textDocument/completion result into Vim completion items
--- for the cursor at byte column col of line: { word, abbr, menu, col, text,
--- user_data }, col being the 0-based byte column the word starts at and
--- text the whole suggestion (word is its first line). It errors on a result
--- that is not a completion list.
function M.items(result, line, col, encoding)
  if result == nil or result == vim.NIL then
    return {}
  end
  if type(result) ~= 'table' then
    error('the completion result is not a list: ' .. vim.inspect(result))
  end
  local raw = result.items or result
  if type(raw) ~= 'table' then
    error('the completion list has no items: ' .. vim.inspect(result))
  end
  local out = {}
  for _, it in ipairs(raw) do
    if type(it) ~= 'table' or type(it.label) ~= 'string' then
      error('a completion item without a label: ' .. vim.inspect(it))
    end
    local text, start = it.insertText or it.label, nil
    local edit = it.textEdit
    if type(edit) == 'table' then
      local range = edit.range or edit.insert -- TextEdit or InsertReplaceEdit
      if type(edit.newText) ~= 'string' or type(range) ~= 'table' or type(range.start) ~= 'table' then
        error('a malformed textEdit: ' .. vim.inspect(edit))
      end
      text = edit.newText
      start = byte_col(line, range.start.character, encoding)
    end
    if start == nil then
      start = vim.fn.match(line:sub(1, col), [[\k*$]])
    end
    local word = vim.split(text, '\n', { plain = true })[1]:gsub('\r$', '')
    table.insert(out, {
      word = word,
      abbr = it.label,
      menu = '[infuse]',
      col = start,
      text = text,
      icase = 1,
      dup = 1,
      empty = 1,
      user_data = { infuse = text },
    })
  end
  return out
end

--- request asks the server for completion at the cursor of bufnr's window
--- (0: the current buffer), then calls callback(err, items) with items as
--- M.items makes them. err is a message when the request could not be made
--- or failed.
function M.request(bufnr, callback)
  if bufnr == nil or bufnr == 0 then
    bufnr = api.nvim_get_current_buf()
  end
  local client = M.get_client(bufnr)
  if not client then
    callback('the server is not attached to this buffer (see :InfuseRestart and :LspInfo)')
    return
  end
  if state.opts and not config.enabled_for(state.opts, state.paused, vim.bo[bufnr].filetype) then
    callback(nil, {})
    return
  end
  local win = vim.fn.bufwinid(bufnr)
  if win == -1 then
    callback('the buffer is not shown in a window')
    return
  end
  local cursor = api.nvim_win_get_cursor(win)
  local row, col = cursor[1] - 1, cursor[2]
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  local encoding = client.offset_encoding or 'utf-16'
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = row, character = lsp_col(line, col, encoding) },
    context = { triggerKind = 1 },
  }
  local start = uv.hrtime()
  local sent = call(client, 'request', 'textDocument/completion', params, function(err, result)
    state.last_ms = (uv.hrtime() - start) / 1e6
    if err then
      callback(('textDocument/completion failed: %s'):format(err.message or vim.inspect(err)))
      return
    end
    local ok, items = pcall(M.items, result, line, col, encoding)
    if not ok then
      callback(items)
      return
    end
    callback(nil, items)
  end, bufnr)
  if not sent then
    callback('the request could not be sent: the server has stopped')
  end
end

--- completefunc for 'completefunc' (<C-x><C-u>): asks the server and
--- fills the popup when the answer comes, if the cursor has not moved.
function M.completefunc(findstart, _)
  if findstart ~= 1 then
    return {}
  end
  local bufnr = api.nvim_get_current_buf()
  local win = api.nvim_get_current_win()
  local at = api.nvim_win_get_cursor(win)
  M.request(bufnr, function(err, items)
    if err then
      notify(err, vim.log.levels.WARN)
      return
    end
    if #items == 0 or api.nvim_get_current_buf() ~= bufnr or api.nvim_get_mode().mode:sub(1, 1) ~= 'i' then
      return
    end
    local now = api.nvim_win_get_cursor(win)
    if now[1] ~= at[1] or now[2] ~= at[2] then
      return
    end
    local start = items[1].col
    for _, it in ipairs(items) do
      start = math.min(start, it.col)
    end
    vim.fn.complete(start + 1, items)
  end)
  -- Stay in completion mode; the popup is filled asynchronously.
  return -2
end

-- complete_done inserts the lines after the first of a multi-line
-- suggestion chosen from the popup (a Vim completion item is one line).
local function complete_done()
  local item = vim.v.completed_item
  if type(item) ~= 'table' or type(item.user_data) ~= 'table' or type(item.user_data.infuse) ~= 'string' then
    return
  end
  local text, word = item.user_data.infuse, item.word or ''
  local rest = text:sub(#word + 1)
  if text:sub(1, #word) ~= word or rest == '' then
    return
  end
  local row, col = unpack(api.nvim_win_get_cursor(0))
  local lines = vim.split(rest, '\n', { plain = true })
  api.nvim_buf_set_text(0, row - 1, col, row - 1, col, lines)
  api.nvim_win_set_cursor(0, { row - 1 + #lines, #lines == 1 and col + #lines[1] or #lines[#lines] })
end

-- Inline completion (0.12+) -----------------------------------------------

--- accept takes the shown inline suggestion; false when there is none.
function M.accept()
  return vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.get() == true
end

local function map_inline(bufnr, keys)
  local ic = vim.lsp.inline_completion
  if keys.accept then
    vim.keymap.set('i', keys.accept, function()
      if ic.get() then
        return ''
      end
      return keys.accept -- nothing to accept: the key types itself
    end, { buffer = bufnr, expr = true, replace_keycodes = true, desc = 'infuse: accept the suggestion' })
  end
  if keys.next then
    vim.keymap.set('i', keys.next, function()
      ic.select({ count = 1 })
    end, { buffer = bufnr, desc = 'infuse: next suggestion' })
  end
  if keys.prev then
    vim.keymap.set('i', keys.prev, function()
      ic.select({ count = -1 })
    end, { buffer = bufnr, desc = 'infuse: previous suggestion' })
  end
end

-- Client configuration ----------------------------------------------------

local function on_init(client)
  local o = state.opts
  if config.use_inline(o) and not o.completion_items then
    -- The popup would ask the server too, and each request supersedes the
    -- other's on the server (newest wins per document).
    client.server_capabilities.completionProvider = nil
  end
end

local function on_attach(client, bufnr)
  local o = state.opts
  if config.use_inline(o) then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
    map_inline(bufnr, o.keymaps)
  elseif o.completefunc then
    vim.bo[bufnr].completefunc = "v:lua.require'infuse'.completefunc"
    -- Once per buffer, however often a server attaches to it.
    api.nvim_clear_autocmds({ group = group, buffer = bufnr, event = 'CompleteDone' })
    api.nvim_create_autocmd('CompleteDone', { group = group, buffer = bufnr, callback = complete_done })
  end
  if o.on_attach then
    o.on_attach(client, bufnr)
  end
end

local function on_exit(code, signal, client_id)
  local on_purpose = state.stopping[client_id]
  state.stopping[client_id] = nil
  for root, id in pairs(state.clients) do
    if id == client_id then
      state.clients[root] = nil
    end
  end
  if on_purpose or (code == 0 and signal == 0) then
    return
  end
  vim.schedule(function()
    notify(('the server exited with code %d%s; :InfuseRestart starts it again, and its messages are in the log (%s)'):format(
      code, signal ~= 0 and (' (signal ' .. signal .. ')') or '', vim.lsp.get_log_path()), vim.log.levels.ERROR)
  end)
end

local function settings()
  return { infuse = config.server_settings(state.opts, state.paused) }
end

local function client_config(root_dir)
  local o = state.opts
  return {
    name = 'infuse',
    cmd = o.cmd,
    root_dir = root_dir,
    init_options = settings(),
    settings = settings(),
    on_init = on_init,
    on_attach = on_attach,
    on_exit = on_exit,
  }
end

-- root_dir is the nearest folder above the buffer's file holding one of the
-- markers, else the file's folder.
local function root_dir(bufnr, markers)
  local name = api.nvim_buf_get_name(bufnr)
  local dir = name ~= '' and vim.fn.fnamemodify(name, ':p:h') or vim.fn.getcwd()
  local best
  for _, m in ipairs(markers or {}) do
    local found = vim.fn.finddir(m, dir .. ';')
    if found ~= '' then
      found = vim.fn.fnamemodify(found, ':p:h:h')
    else
      found = vim.fn.findfile(m, dir .. ';')
      if found ~= '' then
        found = vim.fn.fnamemodify(found, ':p:h')
      end
    end
    if found ~= '' and (best == nil or #found > #best) then
      best = found
    end
  end
  return best or dir
end

local function wanted(bufnr)
  if vim.bo[bufnr].buftype ~= '' or not api.nvim_buf_is_loaded(bufnr) then
    return false
  end
  local ft = vim.bo[bufnr].filetype
  local fts = state.opts.filetypes
  return fts == '*' and ft ~= '' or fts ~= '*' and vim.tbl_contains(fts, ft)
end

local function executable()
  local exe = state.opts.cmd[1]
  if vim.fn.executable(exe) == 1 then
    return true
  end
  notify_once('exe:' .. exe, ('cannot start the server: %s is not an executable file. Build it (go build -o bin/infuse ./cmd/infuse) and put it on PATH, or pass cmd = { "/path/to/infuse", "serve" } to setup().'):format(exe), vim.log.levels.ERROR)
  return false
end

-- start_buffer starts the server for bufnr (or reuses the one for its
-- root) without vim.lsp.enable: on Neovim before 0.11, and on restart.
local function start_buffer(bufnr)
  if not wanted(bufnr) or not executable() then
    return
  end
  local root = root_dir(bufnr, state.opts.root_markers)
  if vim.lsp.start then
    vim.lsp.start(client_config(root), { bufnr = bufnr })
    return
  end
  -- Neovim 0.7
  local id = state.clients[root]
  if not id or not vim.lsp.get_client_by_id(id) then
    local ok, started = pcall(vim.lsp.start_client, client_config(root))
    if not ok or not started then
      notify(('cannot start %s: %s'):format(table.concat(state.opts.cmd, ' '), tostring(started)), vim.log.levels.ERROR)
      return
    end
    id = started
    state.clients[root] = id
  end
  vim.lsp.buf_attach_client(bufnr, id)
end

local function register()
  api.nvim_clear_autocmds({ group = group, event = 'FileType' })
  if has('0.11') then
    local o = state.opts
    vim.lsp.config('infuse', {
      cmd = o.cmd,
      filetypes = o.filetypes ~= '*' and o.filetypes or nil,
      root_markers = o.root_markers,
      init_options = settings(),
      settings = settings(),
      on_init = on_init,
      on_attach = on_attach,
      on_exit = on_exit,
    })
    if executable() then
      vim.lsp.enable('infuse')
    end
    return
  end
  api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = state.opts.filetypes == '*' and '*' or state.opts.filetypes,
    callback = function(args)
      start_buffer(args.buf)
    end,
  })
  for _, b in ipairs(api.nvim_list_bufs()) do
    start_buffer(b)
  end
end

-- Commands ------------------------------------------------------------------

-- push sends the current settings to every running server.
local function push()
  local s = settings()
  if has('0.11') then
    vim.lsp.config('infuse', { init_options = s, settings = s })
  end
  for _, c in ipairs(get_clients()) do
    c.config.settings = s
    call(c, 'notify', 'workspace/didChangeConfiguration', { settings = s })
  end
end

--- toggle turns completions off or on (all languages; the server answers
--- empty while off, without running the model).
function M.toggle()
  state.paused = not state.paused
  push()
  notify('completions ' .. (state.paused and 'off' or 'on'))
end

--- restart stops the servers and starts them again for the open buffers.
function M.restart()
  local clients = get_clients()
  for _, c in ipairs(clients) do
    state.stopping[c.id] = true
    call(c, 'stop')
  end
  vim.wait(3000, function()
    return #get_clients() == 0
  end, 20)
  state.clients = {}
  state.reported = {}
  for _, b in ipairs(api.nvim_list_bufs()) do
    start_buffer(b)
  end
end

--- stats asks the server of the current buffer for its session counters
--- (infuse/stats) and calls callback(err, stats), or prints them.
function M.stats(callback)
  callback = callback or function(err, st)
    if err then
      notify(err, vim.log.levels.WARN)
      return
    end
    notify(('%d requests: %d from the model, %d from the cache, %d empty, %d superseded, %d cancelled, %d timed out, %d failed'):format(
      st.requests or 0, st.completed or 0, st.cacheHits or 0, st.empty or 0, st.superseded or 0, st.cancelled or 0,
      st.timedOut or 0, st.failed or 0))
  end
  local client = M.get_client(0) or get_clients()[1]
  if not client then
    callback('the server is not running')
    return
  end
  call(client, 'request', 'infuse/stats', vim.empty_dict(), function(err, result)
    if err then
      callback('infuse/stats failed: ' .. (err.message or vim.inspect(err)))
    else
      callback(nil, result)
    end
  end)
end

--- status is a short text for the statusline: model, device and the
--- latency of the last completion asked for through this plugin.
function M.status()
  if not state.opts or not M.get_client(0) then
    return ''
  end
  if state.paused then
    return 'infuse off'
  end
  local o = state.opts
  local model = o.model and vim.fn.fnamemodify(o.model:gsub('/+$', ''), ':t') or 'embedded'
  local parts = { 'infuse', model .. '·' .. (o.device or 'auto') }
  if state.last_ms then
    table.insert(parts, ('%d ms'):format(state.last_ms + 0.5))
  end
  return table.concat(parts, ' ')
end

--- setup configures the plugin and starts the server for matching buffers.
--- Calling it again applies new options (restarting the server when cmd
--- changes).
function M.setup(opts)
  local o, problems = config.resolve(opts)
  for _, p in ipairs(problems) do
    notify('setup: ' .. p, vim.log.levels.WARN)
  end
  local before = state.opts
  state.opts = o
  if not api.nvim_get_commands({}).InfuseToggle then
    api.nvim_create_user_command('InfuseToggle', M.toggle, { desc = 'infuse: completions off or on' })
    api.nvim_create_user_command('InfuseRestart', M.restart, { desc = 'infuse: restart the server' })
    api.nvim_create_user_command('InfuseStats', function()
      M.stats()
    end, { desc = 'infuse: the server session counters' })
  end
  register()
  if before then
    if not vim.deep_equal(before.cmd, o.cmd) then
      M.restart()
    else
      push()
    end
  end
end

-- For :checkhealth: the resolved options (nil before setup()) and the
-- running clients.
function M._options()
  return state.opts
end
M._clients = get_clients

return M
