-- Headless Neovim as an LSP client of infuse: textDocument/completion (the
-- fallback for Neovim before 0.12, which has no inline completion) through
-- vim.lsp, against the server in $INFUSE_LSP_SERVER. Works on Neovim 0.7+.
-- Prints PASS and exits 0, or prints FAIL: ... and exits 1.

local server = os.getenv('INFUSE_LSP_SERVER')
local fake = os.getenv('INFUSE_LSP_FAKE') == '1'
local timeout = 10000

local function fail(msg)
  io.stderr:write('FAIL: ' .. msg .. '\n')
  os.exit(1)
end

local function check(cond, msg)
  if not cond then fail(msg) end
end

if not server or server == '' then fail('INFUSE_LSP_SERVER is not set') end

local dir = vim.fn.tempname()
vim.fn.mkdir(dir, 'p')
local buf = vim.api.nvim_create_buf(true, false)
vim.api.nvim_buf_set_name(buf, dir .. '/main.go')
vim.api.nvim_buf_set_lines(buf, 0, -1, false, { 'package main', '', 'func main() {', '\tx := ', '}' })
vim.api.nvim_buf_set_option(buf, 'filetype', 'go')

local client_id = vim.lsp.start_client({
  name = 'infuse',
  cmd = { '/bin/sh', '-c', 'exec ' .. server },
  root_dir = dir,
  init_options = { infuse = { maxTokens = 32 } },
})
check(client_id, 'start_client failed')
vim.lsp.buf_attach_client(buf, client_id)
check(vim.wait(timeout, function()
  local c = vim.lsp.get_client_by_id(client_id)
  return c ~= nil and c.initialized
end), 'the server did not initialize')
local client = vim.lsp.get_client_by_id(client_id)
check(client.server_capabilities == nil or client.server_capabilities.completionProvider ~= nil
  or client.resolved_capabilities.completion, 'no completion capability')

local function complete(line, character)
  local params = { textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = line, character = character } }
  local results, err = vim.lsp.buf_request_sync(buf, 'textDocument/completion', params, timeout)
  check(results, 'no completion response: ' .. tostring(err))
  local r = results[client_id]
  check(r and r.err == nil, 'completion error: ' .. vim.inspect(r))
  return r.result
end

-- A real model may have nothing to add (no item); the stand-in always has.
local function one_item(result, what)
  check(result.isIncomplete == true, what .. ': want an incomplete list')
  check(#result.items == 1 or (not fake and #result.items == 0), what .. ': want one item, got ' .. vim.inspect(result))
  return result.items[1]
end

-- The end of "\tx := ": one item, inserted at the cursor.
local item = one_item(complete(3, 6), 'end of line')
if item then
  local r = item.textEdit.range
  check(r.start.line == 3 and r.start.character == 6 and r['end'].character == 6, 'edit range ' .. vim.inspect(r))
  check(not item.textEdit.newText:find('\n'), 'single-line at the end of a statement')
end
if fake then check(item.textEdit.newText == 'completion()', 'item text ' .. vim.inspect(item.textEdit.newText)) end

-- Type "comp" the way an edit in the buffer reaches the server (an
-- incremental didChange); the item now replaces the typed word, and with
-- the stand-in comes from the type-through cache.
vim.api.nvim_buf_set_text(buf, 3, 6, 3, 6, { 'comp' })
item = one_item(complete(3, 10), 'after typing')
if item then
  local r = item.textEdit.range
  check(r.start.character == 6 and r['end'].character == 10, 'edit range after typing ' .. vim.inspect(r))
  check(item.textEdit.newText:sub(1, 4) == 'comp', 'the item starts with the typed word')
end
if fake then check(item.textEdit.newText == 'completion()', 'item text after typing ' .. vim.inspect(item.textEdit.newText)) end

-- A line of its own inside the block: multi-line.
vim.api.nvim_buf_set_lines(buf, 4, 4, false, { '\t' })
item = one_item(complete(4, 1), 'empty line')
if fake then check(item.textEdit.newText == 'first()\nsecond()', 'multi-line text ' .. vim.inspect(item)) end

vim.lsp.stop_client(client_id)
check(vim.wait(timeout, function() return vim.lsp.get_client_by_id(client_id) == nil end), 'the server did not stop')
print('PASS')
io.stdout:write('\n')
os.exit(0)
