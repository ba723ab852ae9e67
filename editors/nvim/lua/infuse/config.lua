-- Options of require('infuse').setup() and what they become for the server.
-- No editor state here: the functions take options and return tables, so
-- that the mapping can be checked on its own.

local M = {}

local function has(version)
  return vim.fn.has('nvim-' .. version) == 1
end
M.has = has

-- The languages infuse attaches to unless `filetypes` says otherwise
-- ('*' for every file buffer).
M.default_filetypes = {
  'bash', 'c', 'cpp', 'cs', 'css', 'cuda', 'dart', 'elixir', 'erlang', 'go', 'haskell', 'html', 'java',
  'javascript', 'javascriptreact', 'json', 'julia', 'kotlin', 'lua', 'make', 'nim', 'ocaml', 'perl', 'php',
  'python', 'r', 'ruby', 'rust', 'scala', 'scss', 'sh', 'sql', 'svelte', 'swift', 'terraform', 'toml',
  'typescript', 'typescriptreact', 'vim', 'vue', 'yaml', 'zig', 'zsh',
}

M.defaults = {
  -- The server process: `infuse serve` from PATH unless told otherwise.
  cmd = { 'infuse', 'serve' },
  filetypes = M.default_filetypes,
  root_markers = { '.git', 'go.mod', 'package.json', 'pyproject.toml', 'Cargo.toml' },

  -- Server settings (lsp/README.md); nil leaves the server's default or
  -- its command-line flag.
  model = nil, -- model directory; nil: the embedded model
  device = nil, -- 'auto' | 'cpu' | 'cuda'
  mode = nil, -- 'auto' | 'single-line' | 'multi-line'
  max_tokens = nil,
  enable = nil, -- true/false, or { python = true, ['*'] = false }
  debounce_ms = nil, -- nil: 0 with Neovim's inline completion (it waits 200 ms itself), else the server's 20
  timeout_ms = nil,
  prefix_chars = nil,
  suffix_chars = nil,
  hole_markers = nil, -- e.g. { '/*?*/' }

  -- How suggestions show up.
  -- inline: ghost text through vim.lsp.inline_completion (Neovim 0.12+).
  -- Elsewhere the completion items are offered to 'completefunc'
  -- (<C-x><C-u>), and to nvim-cmp or blink.cmp through their LSP sources.
  inline = true,
  -- With inline completion on, the server's completion items are hidden
  -- from the popup (nvim-cmp, blink.cmp, omnifunc): a popup request would
  -- supersede the ghost text's on the server. true keeps both.
  completion_items = false,
  completefunc = true, -- set 'completefunc' in attached buffers (Neovim < 0.12, or inline = false)
  -- Insert-mode keys for inline completion (0.12+); false leaves one unmapped.
  -- The defaults are not used by nvim-cmp or blink.cmp. A key with nothing
  -- to accept types itself, so '<Tab>' works too.
  keymaps = {
    accept = '<M-l>',
    next = '<M-]>',
    prev = '<M-[>',
  },
  on_attach = nil, -- function(client, bufnr), after infuse's own
}

-- Options whose default is nil, so that they are not keys of M.defaults.
local optional = {
  model = true, device = true, mode = true, max_tokens = true, enable = true, debounce_ms = true,
  timeout_ms = true, prefix_chars = true, suffix_chars = true, hole_markers = true, on_attach = true,
}

local modes = { ['auto'] = true, ['single-line'] = true, ['multi-line'] = true }
local devices = { [''] = true, ['auto'] = true, ['cpu'] = true, ['cuda'] = true }

local function is_list(t)
  if type(t) ~= 'table' then
    return false
  end
  local n = 0
  for _ in pairs(t) do
    n = n + 1
  end
  for i = 1, n do
    if t[i] == nil then
      return false
    end
  end
  return true
end

local function count(name, v, min, problems)
  if v == nil then
    return nil
  end
  if type(v) ~= 'number' or v ~= math.floor(v) or v < min then
    table.insert(problems, ('%s = %s: want an integer >= %d'):format(name, vim.inspect(v), min))
    return nil
  end
  return v
end

-- resolve merges opts over the defaults and checks them. A bad value is
-- named in the returned problems and replaced by its default, so that one
-- mistake does not throw the rest away.
function M.resolve(opts)
  opts = opts or {}
  local problems = {}
  if type(opts) ~= 'table' then
    return vim.deepcopy(M.defaults), { 'setup() wants a table of options' }
  end
  local o = vim.deepcopy(M.defaults)
  for k, v in pairs(opts) do
    if M.defaults[k] == nil and not optional[k] then
      table.insert(problems, ('unknown option %s'):format(k))
    elseif k == 'keymaps' and type(v) == 'table' then
      for key, lhs in pairs(v) do
        if o.keymaps[key] == nil then
          table.insert(problems, ('unknown keymap %s'):format(key))
        elseif lhs ~= false and type(lhs) ~= 'string' then
          table.insert(problems, ('keymaps.%s = %s: want a key or false'):format(key, vim.inspect(lhs)))
        else
          o.keymaps[key] = lhs
        end
      end
    else
      o[k] = v
    end
  end

  if not is_list(o.cmd) or #o.cmd == 0 then
    table.insert(problems, ('cmd = %s: want a list such as { "infuse", "serve" }'):format(vim.inspect(o.cmd)))
    o.cmd = vim.deepcopy(M.defaults.cmd)
  end
  if o.filetypes ~= '*' and not is_list(o.filetypes) then
    table.insert(problems, ('filetypes = %s: want a list or "*"'):format(vim.inspect(o.filetypes)))
    o.filetypes = vim.deepcopy(M.defaults.filetypes)
  end
  if o.model ~= nil and type(o.model) ~= 'string' then
    table.insert(problems, ('model = %s: want a directory'):format(vim.inspect(o.model)))
    o.model = nil
  end
  if o.device ~= nil and not devices[o.device] then
    table.insert(problems, ('device = %s: want auto, cpu or cuda'):format(vim.inspect(o.device)))
    o.device = nil
  end
  if o.mode ~= nil and not modes[o.mode] then
    table.insert(problems, ('mode = %s: want auto, single-line or multi-line'):format(vim.inspect(o.mode)))
    o.mode = nil
  end
  o.max_tokens = count('max_tokens', o.max_tokens, 0, problems)
  o.debounce_ms = count('debounce_ms', o.debounce_ms, 0, problems)
  o.timeout_ms = count('timeout_ms', o.timeout_ms, 1, problems)
  o.prefix_chars = count('prefix_chars', o.prefix_chars, 0, problems)
  o.suffix_chars = count('suffix_chars', o.suffix_chars, 0, problems)
  if o.hole_markers ~= nil and not is_list(o.hole_markers) then
    table.insert(problems, ('hole_markers = %s: want a list of strings'):format(vim.inspect(o.hole_markers)))
    o.hole_markers = nil
  end
  if o.enable ~= nil and type(o.enable) ~= 'boolean' then
    local ok = type(o.enable) == 'table'
    if ok then
      for lang, on in pairs(o.enable) do
        if type(lang) ~= 'string' or type(on) ~= 'boolean' then
          ok = false
        end
      end
    end
    if not ok then
      table.insert(problems, ('enable = %s: want true, false or { language = bool }'):format(vim.inspect(o.enable)))
      o.enable = nil
    end
  end
  if o.on_attach ~= nil and type(o.on_attach) ~= 'function' then
    table.insert(problems, 'on_attach: want a function')
    o.on_attach = nil
  end
  return o, problems
end

-- use_inline reports whether ghost text comes from Neovim's inline
-- completion: asked for, and this Neovim has it.
function M.use_inline(o)
  return o.inline and vim.lsp.inline_completion ~= nil
end

-- server_settings is the `infuse` section for the server. Options left nil
-- are left out. paused switches every language off.
function M.server_settings(o, paused)
  local s = {}
  local function put(key, v)
    if v ~= nil then
      s[key] = v
    end
  end
  put('model', o.model)
  put('device', o.device)
  put('mode', o.mode)
  put('maxTokens', o.max_tokens)
  local debounce = o.debounce_ms
  if debounce == nil and M.use_inline(o) then
    debounce = 0
  end
  put('debounceMs', debounce)
  put('timeoutMs', o.timeout_ms)
  put('prefixChars', o.prefix_chars)
  put('suffixChars', o.suffix_chars)
  if o.hole_markers ~= nil then
    s.holeMarkers = o.hole_markers
  end
  if paused then
    s.enable = { ['*'] = false }
  elseif type(o.enable) == 'boolean' then
    s.enable = { ['*'] = o.enable }
  elseif type(o.enable) == 'table' then
    s.enable = vim.deepcopy(o.enable)
  end
  if next(s) == nil then
    -- An empty Lua table would be sent as a JSON array.
    return vim.empty_dict()
  end
  return s
end

-- enabled_for is the server's rule: the language's entry, else '*', else on.
function M.enabled_for(o, paused, filetype)
  if paused then
    return false
  end
  if type(o.enable) == 'boolean' then
    return o.enable
  end
  if type(o.enable) == 'table' then
    if o.enable[filetype] ~= nil then
      return o.enable[filetype]
    end
    if o.enable['*'] ~= nil then
      return o.enable['*']
    end
  end
  return true
end

return M
