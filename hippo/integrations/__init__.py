"""Retrievers for LangChain and LlamaIndex over a local index or a ``hippo serve`` endpoint.

Each framework has its own module, imported only when used: ``hippo.integrations.langchain``
needs ``pip install 'hippo[langchain]'``, ``hippo.integrations.llama_index`` needs
``pip install 'hippo[llama-index]'``. Importing ``hippo`` (or this package) imports neither.
"""
