-- Headless Neovim with the plugin in editors/nvim, against the real
-- `infuse serve` ($INFUSE_BIN). nvim_plugin_test.sh runs one case per Neovim
-- process ($INFUSE_CASE):
--
--   complete  setup{}, a real file, completion through the plugin's request
--             and 'completefunc' paths, accept, multi-line accept, stats,
--             toggle, restart, settings mapping
--   missing   cmd names a file that does not exist: reported, no client
--   crash     the server exits at once (a bad flag): reported
--   files     the JetBrains and Helix configuration files in editors/ are
--             accepted by the server without a warning
--
-- Prints one line per failed check, then "CASE: N passed, M failed", and
-- exits 1 on any failure.

local case = os.getenv('INFUSE_CASE') or 'complete'
local bin = os.getenv('INFUSE_BIN')
local root = os.getenv('INFUSE_ROOT')
local timeout = 20000

local passed, failed = 0, 0
local function check(cond, what)
  if cond then
    passed = passed + 1
  else
    failed = failed + 1
    io.stdout:write(('FAIL [%s] %s\n'):format(case, what))
  end
  return cond
end

local function finish()
  io.stdout:write(('\n%s: %d passed, %d failed\n'):format(case, passed, failed))
  vim.cmd((failed == 0 and passed > 0) and 'qa!' or 'cquit!')
end

local function wait(cond, ms)
  return vim.wait(ms or timeout, cond, 20)
end

if not bin or bin == '' or not root then
  check(false, 'INFUSE_BIN and INFUSE_ROOT must be set')
  finish()
end

-- Everything the plugin tells the user, and every message from the server.
local notes, server_messages = {}, {}
vim.notify = function(msg, level)
  table.insert(notes, { msg = msg, level = level })
end
vim.lsp.handlers['window/showMessage'] = function(_, result)
  table.insert(server_messages, result)
end
local function noted(pattern)
  for _, n in ipairs(notes) do
    if n.msg:find(pattern) then
      return true
    end
  end
  return false
end

vim.cmd('filetype on')
vim.o.virtualedit = 'onemore' -- the cursor may sit after the last character in normal mode

local dir = vim.fn.tempname()
vim.fn.mkdir(dir, 'p')
local function write(name, lines)
  local path = dir .. '/' .. name
  vim.fn.writefile(lines, path)
  return path
end

local infuse = require('infuse')

-- feed types keys in insert mode and runs probe from a timer while Neovim
-- waits for more input; probe returns true when done (then <Esc> or the
-- keys it returns end insert mode).
local function in_insert_mode(keys, probe)
  local t0 = vim.loop.now()
  local timer = vim.loop.new_timer()
  local done = false
  timer:start(20, 20, vim.schedule_wrap(function()
    if done then
      return
    end
    local finished, after = probe()
    if finished or vim.loop.now() - t0 > timeout then
      done = true
      timer:stop()
      timer:close()
      vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes((after or '') .. '<Esc>', true, false, true), 'n', false)
    end
  end))
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), 'ntx!', false)
end

local function attached(buf)
  return wait(function()
    local c = infuse.get_client(buf)
    return c ~= nil and c.initialized == true
  end)
end

local function request(buf)
  local done, err, items
  infuse.request(buf, function(e, its)
    done, err, items = true, e, its
  end)
  wait(function()
    return done
  end)
  return done, err, items
end

local function well_formed(items, line, col)
  if type(items) ~= 'table' then
    return false, 'items is ' .. type(items)
  end
  for _, it in ipairs(items) do
    if type(it.word) ~= 'string' or type(it.text) ~= 'string' or type(it.col) ~= 'number' then
      return false, 'item fields: ' .. vim.inspect(it)
    end
    if it.col < 0 or it.col > col or it.text:sub(1, #it.word) ~= it.word or it.word:find('\n') then
      return false, 'item shape: ' .. vim.inspect(it)
    end
    -- The item keeps what is typed before the cursor in its word.
    if it.word:sub(1, col - it.col) ~= line:sub(it.col + 1, col) then
      return false, 'item does not extend the typed word: ' .. vim.inspect(it)
    end
  end
  return true
end

if case == 'complete' then
  local config = require('infuse.config')

  -- The option mapping: every server key, camelCase, and nothing else.
  local o, problems = config.resolve({
    model = '/models/dream', device = 'cpu', mode = 'multi-line', max_tokens = 48, enable = { go = true, ['*'] = false },
    debounce_ms = 10, timeout_ms = 3000, prefix_chars = 100, suffix_chars = 50, hole_markers = { '/*?*/' },
  })
  check(#problems == 0, 'valid options: ' .. vim.inspect(problems))
  check(vim.deep_equal(config.server_settings(o, false), {
    model = '/models/dream', device = 'cpu', mode = 'multi-line', maxTokens = 48, enable = { go = true, ['*'] = false },
    debounceMs = 10, timeoutMs = 3000, prefixChars = 100, suffixChars = 50, holeMarkers = { '/*?*/' },
  }), 'server settings: ' .. vim.inspect(config.server_settings(o, false)))
  check(vim.deep_equal(config.server_settings(o, true).enable, { ['*'] = false }), 'paused turns every language off')
  check(vim.fn.json_encode(config.server_settings(config.resolve({}), false)) == '{}', 'no options: an empty JSON object')
  local _, bad = config.resolve({ device = 'tpu', max_tokens = -1, timeout_ms = 0, enable = 'yes', cmd = 'infuse', colour = 1 })
  check(#bad == 6, 'bad options are named: ' .. vim.inspect(bad))

  infuse.setup({ cmd = { bin, 'serve' }, max_tokens = 24, timeout_ms = 30000, device = 'bogus' })
  check(noted('setup: device = "bogus"'), 'a bad option is reported by setup: ' .. vim.inspect(notes))

  local path = write('main.go', { 'package main', '', 'func add(a, b int) int {', '\treturn ', '}' })
  vim.cmd('edit ' .. path)
  local buf = vim.api.nvim_get_current_buf()
  check(attached(buf), 'the server attached to a Go file')
  local client = infuse.get_client(buf)
  if not client then
    finish()
  end
  check(vim.bo[buf].completefunc == "v:lua.require'infuse'.completefunc", 'completefunc is set: ' .. vim.bo[buf].completefunc)
  check(vim.deep_equal(client.config.init_options, { infuse = { maxTokens = 24, timeoutMs = 30000 } }),
    'initialization options: ' .. vim.inspect(client.config.init_options))

  -- The request path, at the end of "\treturn ".
  vim.api.nvim_win_set_cursor(0, { 4, 8 })
  local done, err, items = request(buf)
  check(done, 'the completion request was answered')
  check(err == nil, 'the completion request succeeded: ' .. tostring(err))
  local ok, why = well_formed(items, '\treturn ', 8)
  check(ok, 'a well-formed result: ' .. tostring(why))
  check(#items <= 1, 'one suggestion at most: ' .. vim.inspect(items))
  check(infuse.status():match('^infuse embedded·auto %d+ ms$') ~= nil, 'status line: ' .. infuse.status())

  -- The 'completefunc' path: <C-x><C-u> in insert mode fills the popup from
  -- the server; the first item is inserted as it is selected, and leaving
  -- insert mode keeps it (headless Neovim shows no popup, so no <C-y>).
  local info
  in_insert_mode('A<C-x><C-u>', function()
    info = vim.fn.complete_info({ 'items', 'mode' })
    if #info.items > 0 then
      return true
    end
    return false
  end)
  local line = vim.api.nvim_buf_get_lines(buf, 3, 4, false)[1]
  if items and #items > 0 then
    check(info and #info.items == 1 and info.items[1].word == items[1].word,
      'the popup holds the server suggestion: ' .. vim.inspect(info))
    local want = ('\treturn '):sub(1, items[1].col) .. items[1].word
    check(line == want, 'the accepted word is in the buffer: ' .. vim.inspect(line) .. ', want ' .. vim.inspect(want))
  else
    -- The model had nothing to add: the popup stays empty, the line too.
    check(info and #info.items == 0 and line == '\treturn ', 'no suggestion, no change: ' .. vim.inspect(line))
  end
  check(vim.api.nvim_get_mode().mode == 'n', 'back in normal mode')

  -- A multi-line item chosen from the popup: Vim inserts its first line,
  -- the plugin the rest (once, however often a server attached).
  local function multi_line(when)
    vim.api.nvim_buf_set_lines(buf, 3, -1, false, { '\tx := ', '}' })
    vim.api.nvim_win_set_cursor(0, { 4, 6 })
    in_insert_mode('A', function()
      vim.fn.complete(7, { { word = 'first()', user_data = { infuse = 'first()\n\tsecond()' } } })
      return true
    end)
    local lines = vim.api.nvim_buf_get_lines(buf, 3, -1, false)
    check(vim.deep_equal(lines, { '\tx := first()', '\tsecond()', '}' }), 'multi-line accept ' .. when .. ': ' .. vim.inspect(lines))
    vim.api.nvim_buf_set_lines(buf, 3, -1, false, { '\treturn ', '}' })
  end
  multi_line('')

  -- The server's counters, through the plugin.
  local stats
  infuse.stats(function(e, st)
    stats = st or { error = e }
  end)
  check(wait(function()
    return stats ~= nil
  end), 'infuse/stats answered')
  check(stats and (stats.requests or 0) >= 2 and (stats.failed or 0) == 0, 'stats: ' .. vim.inspect(stats))

  -- Toggle: off is sent to the server and stops the requests.
  infuse.toggle()
  check(vim.deep_equal(client.config.settings.infuse.enable, { ['*'] = false }), 'toggle sends enable = false')
  local _, err_off, items_off = request(buf)
  check(err_off == nil and items_off and #items_off == 0, 'no suggestion while off')
  check(infuse.status() == 'infuse off', 'status while off: ' .. infuse.status())
  infuse.toggle()
  check(client.config.settings.infuse.enable == nil, 'toggle back: ' .. vim.inspect(client.config.settings))

  -- Restart: a new process, attached to the open buffer, that completes.
  local old = client.id
  infuse.restart()
  check(wait(function()
    local c = infuse.get_client(buf)
    return c ~= nil and c.id ~= old and c.initialized == true
  end), 'restart attached a new server')
  vim.api.nvim_win_set_cursor(0, { 4, 8 })
  local done2, err2, items2 = request(buf)
  check(done2 and err2 == nil and well_formed(items2, '\treturn ', 8), 'completion after restart: ' .. tostring(err2))
  multi_line('after a restart')
  -- setup() again: new settings reach the running server, no restart.
  local id = infuse.get_client(buf).id
  infuse.setup({ cmd = { bin, 'serve' }, max_tokens = 8, timeout_ms = 30000 })
  local now = infuse.get_client(buf)
  check(now and now.id == id and now.config.settings.infuse.maxTokens == 8, 'setup() again updates the settings in place')
  multi_line('after setup() again')

  -- :checkhealth infuse reports the server and the attachment.
  local src = vim.api.nvim_get_current_buf()
  vim.cmd('checkhealth infuse')
  local report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  check(report:find('OK[^\n]*server: ' .. vim.pesc(bin)) ~= nil and report:find('settings sent: {"maxTokens": ?8,') ~= nil
    and report:find('OK[^\n]*server running %(client %d+, root [^,]+, 1 buffer') ~= nil,
    'checkhealth: ' .. report)
  vim.cmd('bwipeout')
  check(vim.api.nvim_get_current_buf() == src, 'back in the Go buffer')

  check(#server_messages == 0, 'the server warned about nothing: ' .. vim.inspect(server_messages))
  check(not noted('exited'), 'no server exit was reported: ' .. vim.inspect(notes))
elseif case == 'missing' then
  infuse.setup({ cmd = { dir .. '/no-such-infuse', 'serve' } })
  vim.cmd('edit ' .. write('main.py', { 'def add(a, b):', '    return ' }))
  local buf = vim.api.nvim_get_current_buf()
  check(vim.bo[buf].filetype == 'python', 'a Python buffer')
  check(noted('cannot start the server: .*no%-such%-infuse is not an executable file'), 'the missing binary is reported: ' .. vim.inspect(notes))
  check(infuse.get_client(buf) == nil, 'no client')
  local done, err = request(buf)
  check(done and err and err:find('not attached') ~= nil, 'a request says the server is not attached: ' .. tostring(err))
elseif case == 'crash' then
  infuse.setup({ cmd = { bin, 'serve', '--mode', 'sideways' } })
  vim.cmd('edit ' .. write('main.go', { 'package main', '' }))
  check(wait(function()
    return noted('the server exited with code %d')
  end), 'the exit is reported: ' .. vim.inspect(notes))
  check(noted('exited with code 2'), 'with the usage-error status: ' .. vim.inspect(notes))
  check(wait(function()
    return infuse.get_client(0) == nil
  end), 'no client is left attached')
elseif case == 'files' then
  -- The JetBrains template's settings and initialization options, and the
  -- Helix config (converted from TOML by the shell script), sent as they are.
  local function json(path)
    local text = table.concat(vim.fn.readfile(path), '\n')
    local ok, v = pcall(vim.fn.json_decode, text)
    check(ok and type(v) == 'table', path .. ' is a JSON object')
    return ok and v or {}
  end
  local jb = root .. '/editors/jetbrains/infuse/'
  local init_options = json(jb .. 'initializationOptions.json')
  local settings = json(jb .. 'settings.json')
  local helix = json(os.getenv('INFUSE_HELIX_JSON'))
  local helix_config = helix['language-server'] and helix['language-server'].infuse and helix['language-server'].infuse.config
  check(type(helix_config) == 'table' and helix_config.infuse ~= nil, 'helix: language-server.infuse.config.infuse')
  check(helix['language-server'] and vim.deep_equal(helix['language-server'].infuse.args, { 'serve' }), 'helix: infuse serve')

  vim.cmd('edit ' .. write('main.go', { 'package main', '' }))
  local buf = vim.api.nvim_get_current_buf()
  local id = vim.lsp.start_client({ name = 'infuse-files', cmd = { bin, 'serve' }, root_dir = dir, init_options = init_options })
  vim.lsp.buf_attach_client(buf, id)
  check(wait(function()
    local c = vim.lsp.get_client_by_id(id)
    return c ~= nil and c.initialized == true
  end), 'the server started')
  local c = vim.lsp.get_client_by_id(id)
  -- Every key of the JetBrains settings schema, with a value it allows.
  local schema = json(jb .. 'settings.schema.json')
  local every = {}
  for key, p in pairs(schema.properties.infuse.properties) do
    local v = p.default
    if v == nil and p.enum then
      v = p.enum[1]
    elseif v == nil then
      v = ({ string = '', integer = 0 })[p.type]
    end
    if v == nil then
      v = true -- enable
    end
    every[key] = v
  end
  check(vim.tbl_count(every) == 10, 'the schema covers the ten server keys: ' .. vim.inspect(every))
  for what, s in pairs({ jetbrains = settings, helix = helix_config or {}, schema = { infuse = every } }) do
    c.notify('workspace/didChangeConfiguration', { settings = s })
    local res = vim.lsp.buf_request_sync(buf, 'infuse/stats', vim.empty_dict(), timeout)
    check(res and res[id] and res[id].err == nil, what .. ': the server answers after the settings')
  end
  check(#server_messages == 0, 'no warning about the files: ' .. vim.inspect(server_messages))
  -- The check above can fail: a key the server does not know is reported.
  c.notify('workspace/didChangeConfiguration', { settings = { infuse = { maxTokenz = 3 } } })
  vim.lsp.buf_request_sync(buf, 'infuse/stats', vim.empty_dict(), timeout)
  check(#server_messages == 1 and server_messages[1].message:find('maxTokenz') ~= nil, 'an unknown key is warned about: ' .. vim.inspect(server_messages))
  c.stop()
else
  check(false, 'unknown case ' .. case)
end

finish()
